//! Headless Chromium for the HTML report tests: the page as a real browser builds it
//! (`--dump-dom`), a screenshot decoded to check it is not blank, and the list of every
//! `src`/`href`/`url(` of a page. CI installs Chromium (`.ci/run`); a missing browser fails
//! the tests rather than skipping them.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const CHROMIUM: &str = "/usr/bin/chromium";

fn chromium(profile: &Path) -> Command {
    assert!(
        Path::new(CHROMIUM).exists(),
        "{CHROMIUM} is missing: install it with `apt-get install -y chromium` (.ci/run does)"
    );
    let mut c = Command::new(CHROMIUM);
    c.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--hide-scrollbars",
    ])
    .arg(format!("--user-data-dir={}", profile.display()))
    .stdin(Stdio::null());
    c
}

/// Run with a deadline: a stuck browser fails the test instead of hanging it.
fn run(mut cmd: Command, what: &str) -> std::process::Output {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start chromium");
    let stdout = child.stdout.take().expect("stdout");
    let reader = std::thread::spawn(move || {
        let mut out = Vec::new();
        let mut stdout = stdout;
        let _ = std::io::Read::read_to_end(&mut stdout, &mut out);
        out
    });
    let end = Instant::now() + Duration::from_secs(90);
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait") {
            break s;
        }
        if Instant::now() > end {
            let _ = child.kill();
            let _ = child.wait();
            panic!("chromium took more than 90 s to {what}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut stderr = Vec::new();
    if let Some(mut e) = child.stderr.take() {
        let _ = std::io::Read::read_to_end(&mut e, &mut stderr);
    }
    std::process::Output {
        status,
        stdout: reader.join().expect("reader"),
        stderr,
    }
}

fn url(page: &Path) -> String {
    format!(
        "file://{}",
        page.canonicalize().expect("page exists").display()
    )
}

/// The DOM Chromium built from the page, after the load event, serialised.
pub fn dump_dom(page: &Path) -> String {
    dump_dom_and_console(page).0
}

/// The DOM, and the page's console messages (which name any Content-Security-Policy
/// violation: a script or style the page's policy refused).
pub fn dump_dom_and_console(page: &Path) -> (String, String) {
    let profile = tempfile::tempdir().expect("profile dir");
    let mut c = chromium(profile.path());
    c.args(["--enable-logging=stderr", "--v=0", "--dump-dom"])
        .arg(url(page));
    let out = run(c, "dump the DOM");
    let dom = String::from_utf8(out.stdout).expect("utf-8 DOM");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        dom.contains("</html>"),
        "chromium returned no DOM ({}); stderr:\n{stderr}",
        out.status,
    );
    let console = stderr
        .lines()
        .filter(|l| l.contains(":CONSOLE"))
        .collect::<Vec<_>>()
        .join("\n");
    (dom, console)
}

/// How long Chromium takes to load `page` (from the request to its load event, the page's
/// own scripts run), in ms: measured by a small page beside it that opens it in a
/// 1400×1000 frame, so the large page's DOM is not serialised back to the test.
pub fn load_time_ms(page: &Path) -> f64 {
    let dir = page.parent().expect("page directory");
    let name = page.file_name().expect("page name").to_string_lossy();
    let probe = dir.join("load-probe.html");
    std::fs::write(
        &probe,
        format!(
            "<!DOCTYPE html><html><body><script>\n\
             var f = document.createElement('iframe');\n\
             f.width = 1400; f.height = 1000;\n\
             var t0 = performance.now();\n\
             f.onload = function () {{ document.documentElement.setAttribute('data-load-ms', String(Math.round(performance.now() - t0))); }};\n\
             f.src = {name:?};\n\
             document.body.appendChild(f);\n\
             </script></body></html>"
        ),
    )
    .expect("write the probe page");
    let dom = dump_dom(&probe);
    dom.split("data-load-ms=\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("the probe saw no load of {name}: {dom}"))
}

/// Open `target` (a page of `dir`, with an optional `#fragment`) in a frame of a probe page,
/// and once it has loaded run `script` with `d` (the frame's document) and `w` (its window):
/// the string it returns comes back. With `sandboxed`, the frame runs no script at all
/// (as with JavaScript off).
pub fn probe(dir: &Path, target: &str, sandboxed: bool, script: &str) -> String {
    let probe = dir.join("probe.html");
    let sandbox = if sandboxed {
        "f.setAttribute('sandbox', 'allow-same-origin');"
    } else {
        ""
    };
    std::fs::write(
        &probe,
        format!(
            "<!DOCTYPE html><html><body><script>\n\
             var f = document.createElement('iframe');\n\
             {sandbox}\n\
             f.width = 1400; f.height = 1000;\n\
             f.onload = function () {{\n\
               var d = f.contentDocument, w = f.contentWindow, out;\n\
               try {{ out = (function () {{ {script} }})(); }} catch (e) {{ out = 'error: ' + e; }}\n\
               var p = document.createElement('pre'); p.id = 'probe-out';\n\
               p.textContent = String(out); document.body.appendChild(p);\n\
             }};\n\
             f.src = {target:?};\n\
             document.body.appendChild(f);\n\
             </script></body></html>"
        ),
    )
    .expect("write the probe page");
    let profile = tempfile::tempdir().expect("profile dir");
    let mut c = chromium(profile.path());
    c.args(["--allow-file-access-from-files", "--dump-dom"])
        .arg(url(&probe));
    let out = run(c, "dump the probe's DOM");
    let dom = String::from_utf8_lossy(&out.stdout);
    dom.split("<pre id=\"probe-out\">")
        .nth(1)
        .and_then(|s| s.split("</pre>").next())
        .map(|s| {
            s.replace("&amp;", "&")
                .replace("&lt;", "<")
                .replace("&gt;", ">")
        })
        .unwrap_or_else(|| panic!("the probe did not finish on {target}: {dom}"))
}

/// How many elements match each selector in `page` as Chromium builds it with scripting
/// off.
pub fn count_without_script(page: &Path, selectors: &[&str]) -> Vec<usize> {
    let dir = page.parent().expect("page directory");
    let name = page.file_name().expect("page name").to_string_lossy();
    let list = serde_json::to_string(selectors).expect("selectors as JSON");
    let out = probe(
        dir,
        &name,
        true,
        &format!(
            "return {list}.map(function (s) {{ return d.querySelectorAll(s).length; }}).join(',');"
        ),
    );
    out.split(',')
        .map(|n| n.parse().unwrap_or_else(|_| panic!("a count: {out}")))
        .collect()
}

/// A screenshot of the page's first `width`×`height` pixels.
pub fn screenshot(page: &Path, png: &Path, width: u32, height: u32) {
    let profile = tempfile::tempdir().expect("profile dir");
    let mut c = chromium(profile.path());
    c.arg(format!("--window-size={width},{height}"))
        .arg(format!("--screenshot={}", png.display()))
        .arg(url(page));
    let out = run(c, "take a screenshot");
    assert!(
        png.exists(),
        "no screenshot ({}); stderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The size and the number of distinct colours of a PNG (a blank page has one or two).
pub fn png_colours(png: &Path) -> (u32, u32, usize) {
    let decoder = png::Decoder::new(std::io::BufReader::new(
        std::fs::File::open(png).expect("open png"),
    ));
    let mut reader = decoder.read_info().expect("a PNG");
    let mut buf = vec![0; reader.output_buffer_size().expect("buffer size")];
    let info = reader.next_frame(&mut buf).expect("decode PNG");
    let px = info.color_type.samples();
    let colours: HashSet<&[u8]> = buf[..info.buffer_size()].chunks(px).collect();
    (info.width, info.height, colours.len())
}

/// Every URL-bearing attribute value (`src`, `href`, `xlink:href`, `action`, `formaction`,
/// `poster`, `srcset`, `data`, `background`) of every tag as written, and every `url(` /
/// `@import` in a `<style>` element or a `style` attribute. Recorded values are escaped
/// text, so a recorded `<img src=…>` is `&lt;img src=…` and no tag: only the page's own
/// markup is read.
pub fn references(page: &str) -> Vec<String> {
    const URL_ATTRS: &[&str] = &[
        "src",
        "href",
        "xlink:href",
        "action",
        "formaction",
        "poster",
        "srcset",
        "data",
        "background",
    ];
    let mut out = Vec::new();
    let css_refs = |css: &str, out: &mut Vec<String>| {
        let lower = css.to_ascii_lowercase();
        for (i, _) in lower.match_indices("url(") {
            out.push(css[i..].split(')').next().unwrap_or("").to_string());
        }
        if lower.contains("@import") {
            out.push("@import".into());
        }
    };
    let b = page.as_bytes();
    let mut i = 0;
    while let Some(off) = page[i..].find('<') {
        let start = i + off + 1;
        // A tag name starts with a letter (or `/` for an end tag); `<!…` is a comment/doctype.
        if !b.get(start).is_some_and(|c| c.is_ascii_alphabetic()) {
            i = start;
            continue;
        }
        let name_end = page[start..]
            .find(|c: char| c.is_ascii_whitespace() || c == '>' || c == '/')
            .map_or(page.len(), |n| start + n);
        let name = page[start..name_end].to_ascii_lowercase();
        // Attributes up to the closing `>` (quoted values may hold `>`).
        let mut j = name_end;
        loop {
            while j < b.len() && (b[j].is_ascii_whitespace() || b[j] == b'/') {
                j += 1;
            }
            if j >= b.len() || b[j] == b'>' {
                break;
            }
            let an_end = page[j..]
                .find(|c: char| c.is_ascii_whitespace() || c == '=' || c == '>' || c == '/')
                .map_or(page.len(), |n| j + n);
            let attr = page[j..an_end].to_ascii_lowercase();
            j = an_end;
            while j < b.len() && b[j].is_ascii_whitespace() {
                j += 1;
            }
            let mut value = None;
            if j < b.len() && b[j] == b'=' {
                j += 1;
                while j < b.len() && b[j].is_ascii_whitespace() {
                    j += 1;
                }
                let (v, next) = match b.get(j) {
                    Some(&q @ (b'"' | b'\'')) => {
                        let close = page[j + 1..]
                            .find(q as char)
                            .map_or(page.len(), |n| j + 1 + n);
                        (&page[j + 1..close], close + 1)
                    }
                    _ => {
                        let e = page[j..]
                            .find(|c: char| c.is_ascii_whitespace() || c == '>')
                            .map_or(page.len(), |n| j + n);
                        (&page[j..e], e)
                    }
                };
                value = Some(v);
                j = next;
            }
            if let Some(v) = value {
                if URL_ATTRS.contains(&attr.as_str()) {
                    out.push(v.to_string());
                }
                if attr == "style" {
                    css_refs(v, &mut out);
                }
            }
        }
        i = j.min(b.len());
        // Raw text elements: the page's own style (checked) and script (not markup).
        if name == "style" || name == "script" {
            let close = format!("</{name}");
            let end = page[i..].find(&close).map_or(page.len(), |n| i + n);
            if name == "style" {
                css_refs(&page[i..end], &mut out);
            }
            i = end;
        }
    }
    out
}

/// References that leave the page: anything but `#fragment` links.
pub fn off_page(page: &str) -> Vec<String> {
    references(page)
        .into_iter()
        .filter(|r| !r.starts_with('#'))
        .collect()
}

/// A fresh directory for pages and screenshots.
pub fn out_dir() -> tempfile::TempDir {
    tempfile::tempdir().expect("tempdir")
}

/// Where a test may leave a screenshot for people to look at (`target/report-screenshots`).
pub fn keep_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/report-screenshots");
    std::fs::create_dir_all(&dir).expect("create target/report-screenshots");
    dir
}
