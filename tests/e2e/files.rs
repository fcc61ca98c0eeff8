//! Files the user names are theirs: every command that writes one (`export -o`,
//! `replay --report`, `report -o`, `diff --format html -o`) writes through a symlink, keeps
//! the mode and hard links of an existing file, creates a new one under the umask, writes a
//! FIFO or a device through instead of replacing it, and refuses a directory with one line.
//! Recordings that cannot be written (a read-only checkout, a CI cache) are still read, and
//! reading leaves nothing beside them.

use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::util::fixture::{FE1, LYNCWEB, im_session, write_session};
use crate::util::{Server, s};

/// A recording with one session `s`.
fn recording(dir: &Path) -> PathBuf {
    let db = dir.join("rec.sqlite");
    write_session(&db, "s", FE1, &[LYNCWEB], &im_session(FE1, LYNCWEB));
    db
}

/// The commands that write a file the user names.
#[derive(Debug, Clone, Copy)]
enum Writer {
    Export,
    Report,
    DiffHtml,
    ReplayReport,
}

const WRITERS: [Writer; 4] = [
    Writer::Export,
    Writer::Report,
    Writer::DiffHtml,
    Writer::ReplayReport,
];

impl Writer {
    fn args(self, db: &Path, out: &Path) -> Vec<String> {
        let (db, out) = (s(db).to_string(), s(out).to_string());
        let v = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        match self {
            Writer::Export => v(&["export", "--db", &db, "--session", "s", "-o", &out]),
            Writer::Report => v(&["report", "--db", &db, "--session", "s", "-o", &out]),
            Writer::DiffHtml => v(&[
                "diff",
                &format!("{db}#s"),
                &format!("{db}#s"),
                "--format",
                "html",
                "-o",
                &out,
            ]),
            Writer::ReplayReport => v(&[
                "replay",
                "--db",
                &db,
                "--session",
                "s",
                "--listen",
                "127.0.0.1:0",
                "--report",
                &out,
            ]),
        }
    }

    /// Run the command to the end (the replay server is started and stopped with SIGTERM),
    /// with `umask` when given. Returns the exit code and stderr.
    fn run(self, db: &Path, out: &Path, umask: Option<&str>) -> (Option<i32>, String) {
        let args = self.args(db, out);
        if let Writer::ReplayReport = self {
            assert!(umask.is_none(), "not needed");
            let mut server = Server::start(&args.iter().map(String::as_str).collect::<Vec<_>>());
            let status = server.terminate(Duration::from_secs(30));
            return (status.code(), server.stderr());
        }
        let output = command(&args, umask).output().expect("run ucwa-replay");
        (
            output.status.code(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    }
}

/// `ucwa-replay ARGS`, under `umask` when given (through `sh`, which sets it for the exec).
fn command(args: &[String], umask: Option<&str>) -> Command {
    let bin = env!("CARGO_BIN_EXE_ucwa-replay");
    let mut cmd = match umask {
        Some(mask) => {
            let mut c = Command::new("sh");
            c.arg("-c")
                .arg(format!("umask {mask} && exec \"$0\" \"$@\""))
                .arg(bin);
            c
        }
        None => Command::new(bin),
    };
    cmd.args(args)
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    cmd
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().mode() & 0o777
}

/// Files in `dir` other than those named: no temporary file may be left behind.
fn others(dir: &Path, known: &[&str]) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| !known.contains(&n.as_str()))
        .collect()
}

#[test]
fn a_symlink_stays_a_link_and_its_target_keeps_its_mode() {
    let dir = tempfile::tempdir().unwrap();
    let db = recording(dir.path());
    for writer in WRITERS {
        let out_dir = tempfile::tempdir().unwrap();
        let target = out_dir.path().join("target.out");
        std::fs::write(&target, b"old").unwrap();
        std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o600)).unwrap();
        let link = out_dir.path().join("link.out");
        std::os::unix::fs::symlink("target.out", &link).unwrap();

        let (code, stderr) = writer.run(&db, &link, None);
        assert_eq!(code, Some(0), "{writer:?}: {stderr}");
        let meta = std::fs::symlink_metadata(&link).unwrap();
        assert!(
            meta.file_type().is_symlink(),
            "{writer:?}: the link was replaced"
        );
        let written = std::fs::read(&target).unwrap();
        assert!(written.len() > 100, "{writer:?}: {written:?}");
        assert_eq!(mode(&target), 0o600, "{writer:?}: mode of the target");
        assert_eq!(
            others(out_dir.path(), &["target.out", "link.out"]),
            Vec::<String>::new()
        );
    }
}

#[test]
fn a_hard_link_stays_linked() {
    let dir = tempfile::tempdir().unwrap();
    let db = recording(dir.path());
    for writer in WRITERS {
        let out_dir = tempfile::tempdir().unwrap();
        let file = out_dir.path().join("out");
        std::fs::write(&file, b"old").unwrap();
        let other = out_dir.path().join("other-name");
        std::fs::hard_link(&file, &other).unwrap();
        let inode = std::fs::metadata(&file).unwrap().ino();

        let (code, stderr) = writer.run(&db, &file, None);
        assert_eq!(code, Some(0), "{writer:?}: {stderr}");
        assert_eq!(std::fs::metadata(&file).unwrap().ino(), inode, "{writer:?}");
        assert_eq!(
            std::fs::read(&file).unwrap(),
            std::fs::read(&other).unwrap(),
            "{writer:?}: both names show the new content"
        );
        assert_ne!(std::fs::read(&other).unwrap(), b"old", "{writer:?}");
    }
}

#[test]
fn a_new_file_is_created_under_the_umask() {
    let dir = tempfile::tempdir().unwrap();
    let db = recording(dir.path());
    for writer in [Writer::Export, Writer::Report, Writer::DiffHtml] {
        for (umask, expected) in [("077", 0o600), ("022", 0o644), ("002", 0o664)] {
            let out = dir.path().join(format!("new-{umask}.out"));
            let (code, stderr) = writer.run(&db, &out, Some(umask));
            assert_eq!(code, Some(0), "{writer:?}: {stderr}");
            assert_eq!(mode(&out), expected, "{writer:?} under umask {umask}");
            std::fs::remove_file(&out).unwrap();
        }
    }
}

/// Run `cat FIFO > OUT` in the background and return it.
fn fifo_reader(fifo: &Path, out: &Path) -> std::process::Child {
    Command::new("sh")
        .arg("-c")
        .arg("exec cat \"$0\" > \"$1\"")
        .arg(fifo)
        .arg(out)
        .spawn()
        .expect("start cat")
}

/// Wait for `child` (at most `within`: a reader left waiting is the failure this guards
/// against, so it is killed and reported rather than left hanging).
fn wait_or_kill(child: &mut std::process::Child, within: Duration) -> bool {
    let end = Instant::now() + within;
    while Instant::now() < end {
        if child.try_wait().unwrap().is_some() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
    false
}

#[test]
fn a_fifo_is_written_through_and_its_reader_gets_everything() {
    let dir = tempfile::tempdir().unwrap();
    let db = recording(dir.path());
    for writer in WRITERS {
        let fifo = dir.path().join("pipe");
        let got = dir.path().join("got");
        let made = Command::new("mkfifo").arg(&fifo).status().unwrap();
        assert!(made.success());
        let mut reader = fifo_reader(&fifo, &got);
        let (code, stderr) = writer.run(&db, &fifo, None);
        let finished = wait_or_kill(&mut reader, Duration::from_secs(20));
        assert_eq!(code, Some(0), "{writer:?}: {stderr}");
        assert!(finished, "{writer:?}: the FIFO's reader was left waiting");
        assert!(
            std::fs::metadata(&fifo).unwrap().file_type().is_fifo(),
            "{writer:?}: the FIFO was replaced"
        );
        let text = std::fs::read_to_string(&got).unwrap();
        assert!(text.len() > 100, "{writer:?}: {text:?}");
        std::fs::remove_file(&fifo).unwrap();
    }
}

/// A device node is written through, never replaced: a full device's error is the answer.
/// The node is made in a temporary directory (as root: `mknod`); without the right to make
/// one, this test checks nothing and says so.
#[test]
fn a_device_is_written_through_and_its_error_reported() {
    let dir = tempfile::tempdir().unwrap();
    let db = recording(dir.path());
    let full = dir.path().join("full");
    // /dev/full is character device 1,7 on Linux.
    let made = Command::new("mknod")
        .arg(&full)
        .args(["c", "1", "7"])
        .stderr(Stdio::null())
        .status();
    if !made.is_ok_and(|s| s.success()) {
        eprintln!("skipped: cannot make a device node here (not root)");
        return;
    }
    for writer in [Writer::Export, Writer::Report, Writer::DiffHtml] {
        let (code, stderr) = writer.run(&db, &full, None);
        assert_eq!(code, Some(2), "{writer:?}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{writer:?}: {stderr}");
        assert!(
            stderr.contains(&format!("cannot write {}", full.display()))
                && stderr.contains("No space left on device"),
            "{writer:?}: {stderr}"
        );
        let meta = std::fs::metadata(&full).unwrap();
        assert!(meta.file_type().is_char_device(), "{writer:?}: replaced");
    }
}

#[test]
fn a_directory_is_refused_with_one_line_naming_the_cause_once() {
    let dir = tempfile::tempdir().unwrap();
    let db = recording(dir.path());
    let target = dir.path().join("a-directory");
    std::fs::create_dir(&target).unwrap();
    for writer in [Writer::Export, Writer::Report, Writer::DiffHtml] {
        let (code, stderr) = writer.run(&db, &target, None);
        assert_eq!(code, Some(2), "{writer:?}: {stderr}");
        assert_eq!(
            stderr.trim_end(),
            format!(
                "ucwa-replay: error: cannot write {}: it is a directory",
                target.display()
            ),
            "{writer:?}"
        );
    }
}

#[test]
fn a_file_that_may_not_be_written_is_refused_and_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let db = recording(dir.path());
    let out = dir.path().join("locked.out");
    std::fs::write(&out, b"keep me").unwrap();
    std::fs::set_permissions(&out, std::fs::Permissions::from_mode(0o444)).unwrap();
    for writer in [Writer::Export, Writer::Report, Writer::DiffHtml] {
        let mut args = writer.args(&db, &out);
        let (code, stderr) = as_unprivileged(&mut args, dir.path());
        assert_eq!(code, Some(2), "{writer:?}: {stderr}");
        assert_eq!(
            stderr.trim_end(),
            format!(
                "ucwa-replay: error: cannot write {}: Permission denied (os error 13)",
                out.display()
            ),
            "{writer:?}"
        );
        assert_eq!(std::fs::read(&out).unwrap(), b"keep me", "{writer:?}");
        assert_eq!(mode(&out), 0o444);
    }
}

/// The user id tests run commands as when they need the kernel to enforce file modes: as
/// root (CI), modes are ignored, so the command runs as `nobody` (65534); otherwise as the
/// current user, for whom they already hold.
fn unprivileged_uid() -> Option<u32> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let uid = status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))?
        .split_whitespace()
        .nth(1)?
        .parse::<u32>()
        .ok()?;
    (uid == 0).then_some(65534)
}

/// Run `ucwa-replay ARGS` so that file modes hold (see [`unprivileged_uid`]); `dir` is made
/// reachable for that user.
fn as_unprivileged(args: &mut [String], dir: &Path) -> (Option<i32>, String) {
    let mut cmd = command(args, None);
    if let Some(uid) = unprivileged_uid() {
        use std::os::unix::process::CommandExt;
        let mut at = Some(dir);
        while let Some(d) = at {
            if d.starts_with(std::env::temp_dir()) && d != std::env::temp_dir() {
                let m = mode(d);
                std::fs::set_permissions(d, std::fs::Permissions::from_mode(m | 0o005)).unwrap();
            }
            at = d.parent();
        }
        cmd.uid(uid).gid(uid);
    }
    let out = cmd.output().expect("run ucwa-replay");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A copy of `db` at `to` in WAL mode with no `-wal` beside it, as recordings of earlier
/// versions were left (and as `sqlite3` leaves a WAL-mode file it closes).
fn wal_mode_copy(db: &Path, to: &Path) {
    std::fs::copy(db, to).unwrap();
    let conn = rusqlite::Connection::open(to).unwrap();
    let mode: String = conn
        .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
    drop(conn);
    assert!(!sidecar(to, "-wal").exists());
}

fn sidecar(path: &Path, suffix: &str) -> PathBuf {
    PathBuf::from(format!("{}{suffix}", path.display()))
}

/// Every command that only reads a recording, on `db` (session `s`); `out` is a writable
/// directory for `report -o`.
fn reading_commands(db: &Path, out: &Path) -> Vec<Vec<String>> {
    let db = s(db);
    let at = format!("{db}#s");
    let html = format!("{}/page.html", s(out));
    let v = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    vec![
        v(&["sessions", "--db", db]),
        v(&["show", "--db", db, "--session", "s"]),
        v(&["events", "--db", db, "--session", "s"]),
        v(&["export", "--db", db, "--session", "s"]),
        v(&["export", "--db", db, "--session", "s", "--format", "ndjson"]),
        v(&["diff", &at, &at]),
        v(&["audit", "--db", db]),
        v(&["report", "--db", db, "--session", "s", "-o", &html]),
    ]
}

/// Whether a reading command did its work: exit 0, or 1 for `audit` with findings (the
/// fixture holds secret-looking test values on purpose).
fn succeeded(args: &[String], code: Option<i32>) -> bool {
    code == Some(0) || (args[0] == "audit" && code == Some(1))
}

/// Start `replay` on `db` as [`as_unprivileged`] would run it, GET its root, stop it.
fn replay_once(db: &Path, unprivileged: bool) -> (Option<i32>, String) {
    use std::io::{BufRead, BufReader};
    use std::os::unix::process::CommandExt;
    let args = [
        "replay",
        "--db",
        s(db),
        "--session",
        "s",
        "--listen",
        "127.0.0.1:0",
    ];
    let mut cmd = command(&args.map(String::from), None);
    cmd.stdout(Stdio::piped());
    if unprivileged && let Some(uid) = unprivileged_uid() {
        cmd.uid(uid).gid(uid);
    }
    let mut child = cmd.spawn().unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let url = lines.next().and_then(Result::ok).unwrap_or_default();
    if url.starts_with("http://") {
        // Any answer (this one is a miss) shows the recording was loaded and is served.
        let reply = crate::util::get(&url, "/");
        assert_eq!(reply.header("x-ucwa-replay"), Some("miss"));
        let _ = Command::new("kill").arg(child.id().to_string()).status();
    }
    let out = child.wait_with_output().unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn reading_a_recording_leaves_nothing_beside_it_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let db = recording(dir.path());
    let legacy = dir.path().join("legacy.sqlite");
    wal_mode_copy(&db, &legacy);
    for file in [&db, &legacy] {
        let before = std::fs::read(file).unwrap();
        for args in reading_commands(file, dir.path()) {
            let out = command(&args, None).output().unwrap();
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(succeeded(&args, out.status.code()), "{args:?}: {stderr}");
            for suffix in ["-wal", "-shm", "-journal"] {
                assert!(!sidecar(file, suffix).exists(), "{args:?} left {suffix}");
            }
        }
        let (code, stderr) = replay_once(file, false);
        assert_eq!(code, Some(0), "replay: {stderr}");
        for suffix in ["-wal", "-shm"] {
            assert!(!sidecar(file, suffix).exists(), "replay left {suffix}");
        }
        assert!(
            std::fs::read(file).unwrap() == before,
            "{} changed",
            file.display()
        );
    }
}

/// A read-only recording in a read-only directory (a read-only checkout, a CI cache) is
/// read by every reading command. As root the kernel ignores modes, so the commands run as
/// `nobody` there: what is checked is what an ordinary user would meet.
#[test]
fn a_read_only_recording_in_a_read_only_directory_is_read() {
    let dir = tempfile::tempdir().unwrap();
    let db = recording(dir.path());
    let out = dir.path().join("out");
    std::fs::create_dir(&out).unwrap();
    std::fs::set_permissions(&out, std::fs::Permissions::from_mode(0o777)).unwrap();
    let ro = dir.path().join("ro");
    std::fs::create_dir(&ro).unwrap();
    let fresh = ro.join("rec.sqlite");
    std::fs::copy(&db, &fresh).unwrap();
    let legacy = ro.join("legacy.sqlite");
    wal_mode_copy(&db, &legacy);
    for file in [&fresh, &legacy] {
        std::fs::set_permissions(file, std::fs::Permissions::from_mode(0o444)).unwrap();
    }
    std::fs::set_permissions(&ro, std::fs::Permissions::from_mode(0o555)).unwrap();
    for file in [&fresh, &legacy] {
        let before = std::fs::read(file).unwrap();
        for mut args in reading_commands(file, &out) {
            let (code, stderr) = as_unprivileged(&mut args, dir.path());
            assert!(succeeded(&args, code), "{args:?}: {stderr}");
        }
        let (code, stderr) = replay_once(file, true);
        assert_eq!(code, Some(0), "replay: {stderr}");
        assert!(std::fs::read(file).unwrap() == before);
    }
    assert_eq!(
        others(&ro, &["rec.sqlite", "legacy.sqlite"]),
        Vec::<String>::new()
    );
    std::fs::set_permissions(&ro, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// The recording deleted while `record` runs: SQLite keeps writing to the deleted file, so
/// `record` used to report every exchange as recorded and exit 0 with no file. It says so
/// at once, keeps answering, and exits 2 naming the loss.
#[test]
fn a_recording_deleted_while_recording_is_reported_at_once_and_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("rec.sqlite");
    let sim = Server::start(&["simulate", "--listen", "127.0.0.1:0", "--seed", "5"]);
    let mut rec = Server::record(&sim.url, &db, "s", &[]);
    let root = "/autodiscover/autodiscoverservice.svc/root";
    assert_eq!(crate::util::get(&rec.url, root).status, 200);
    rec.wait_for_stderr("exchange", Duration::from_secs(30));
    std::fs::remove_file(&db).unwrap();
    assert_eq!(crate::util::get(&rec.url, root).status, 200);
    rec.wait_for_stderr("deleted or replaced", Duration::from_secs(30));
    // Still proxying.
    assert_eq!(crate::util::get(&rec.url, root).status, 200);
    let status = rec.terminate(Duration::from_secs(30));
    assert_eq!(status.code(), Some(2), "{}", rec.stderr());
    let stderr = rec.stderr();
    let last = stderr.lines().last().unwrap_or_default();
    assert!(
        last.starts_with("ucwa-replay: error: ")
            && last.contains(
                "the file was deleted or replaced while recording; none of the session's"
            ),
        "{stderr}"
    );
    assert!(!stderr.contains("recorded session"), "{stderr}");
}

/// Recording into a file that cannot be written is one line saying so (it used to be
/// "SQLite: attempt to write a readonly database: Error code 1544: attempt to write a
/// readonly database"), before anything listens.
#[test]
fn recording_into_a_read_only_file_is_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let db = recording(dir.path());
    let ro = dir.path().join("ro");
    std::fs::create_dir(&ro).unwrap();
    let file = ro.join("rec.sqlite");
    std::fs::copy(&db, &file).unwrap();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o444)).unwrap();
    std::fs::set_permissions(&ro, std::fs::Permissions::from_mode(0o555)).unwrap();
    let before = std::fs::read(&file).unwrap();
    let mut args: Vec<String> = [
        "record",
        "--upstream",
        "http://127.0.0.1:9",
        "--listen",
        "127.0.0.1:0",
        "--db",
        s(&file),
        "--session",
        "new",
    ]
    .map(String::from)
    .to_vec();
    let (code, stderr) = as_unprivileged(&mut args, dir.path());
    assert_eq!(code, Some(2), "{stderr}");
    assert_eq!(
        stderr.trim_end(),
        format!(
            "ucwa-replay: error: {}: cannot be written: the file or its directory is read-only",
            file.display()
        )
    );
    assert!(std::fs::read(&file).unwrap() == before);
    std::fs::set_permissions(&ro, std::fs::Permissions::from_mode(0o755)).unwrap();
}
