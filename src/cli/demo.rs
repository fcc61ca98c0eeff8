//! `ucwa-replay demo`: the whole product with no network, checked step by step.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use comfy_table::{ContentArrangement, Table, presets::UTF8_FULL_CONDENSED};
use ucwa_replay::demo::{DemoOptions, run_demo};

use super::{Ctx, OutputFormat};

/// Widest the summary table gets, on a terminal or piped.
const MAX_WIDTH: u16 = 100;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Recording file for the demo's sessions (demo, demo-xml, demo-again are replaced).
    #[arg(value_name = "FILE", long, default_value = "recordings/demo.sqlite")]
    pub db: PathBuf,
    /// Simulator seed of the first recording (the third uses seed + 1).
    #[arg(value_name = "N", long, default_value_t = 7)]
    pub seed: u64,
    /// Output format.
    #[arg(value_name = "FORMAT", long, value_enum, default_value_t = OutputFormat::Text)]
    pub format: OutputFormat,
}

pub async fn run(args: Args, _ctx: Ctx) -> anyhow::Result<ExitCode> {
    let steps = run_demo(&DemoOptions {
        db: args.db.clone(),
        seed: args.seed,
    })
    .await?;
    let ok = steps.iter().all(|s| s.ok);
    let mut out = std::io::stdout().lock();
    match args.format {
        OutputFormat::Json => {
            serde_json::to_writer_pretty(&mut out, &serde_json::json!({"ok": ok, "steps": steps}))?;
            writeln!(out)?;
        }
        OutputFormat::Text => {
            let mut table = Table::new();
            table
                .load_style(UTF8_FULL_CONDENSED)
                .set_content_arrangement(ContentArrangement::Dynamic)
                .set_header(["step", "result", "ms", "what was checked"]);
            // The terminal's width, at most 100 columns; piped (no width), 100.
            let width = table.width().unwrap_or(MAX_WIDTH).min(MAX_WIDTH);
            table.set_width(width);
            for s in &steps {
                table.add_row([
                    s.step.clone(),
                    if s.ok { "ok".into() } else { "FAILED".into() },
                    s.millis.to_string(),
                    s.detail.clone(),
                ]);
            }
            writeln!(out, "{table}")?;
            writeln!(
                out,
                "{}: recording in {} (try: ucwa-replay sessions --db {})",
                if ok { "demo passed" } else { "demo FAILED" },
                args.db.display(),
                args.db.display()
            )?;
        }
    }
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
