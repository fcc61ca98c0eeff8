//! `text/*` bodies compared by lines (similar's line diff): each changed hunk is one change
//! named `/line/N` (1-based line number in A, or in B for pure insertions).

use similar::{DiffOp, capture_diff_slices};

use super::{Change, ChangeKind, Part};

/// Lines of a body: normalised (decides) and raw (shown).
#[derive(Debug, Clone)]
pub struct Lines {
    pub norm: Vec<String>,
    pub raw: Vec<String>,
}

/// Compare two texts line by line.
pub fn compare(a: &Lines, b: &Lines, out: &mut Vec<Change>) {
    let ops = capture_diff_slices(similar::Algorithm::Myers, &a.norm, &b.norm);
    for op in ops {
        let (kind, line, ra, rb) = match op {
            DiffOp::Equal { .. } => continue,
            DiffOp::Delete {
                old_index, old_len, ..
            } => (
                ChangeKind::Removed,
                old_index + 1,
                Some(&a.raw[old_index..old_index + old_len]),
                None,
            ),
            DiffOp::Insert {
                new_index, new_len, ..
            } => (
                ChangeKind::Added,
                new_index + 1,
                None,
                Some(&b.raw[new_index..new_index + new_len]),
            ),
            DiffOp::Replace {
                old_index,
                old_len,
                new_index,
                new_len,
            } => (
                ChangeKind::Changed,
                old_index + 1,
                Some(&a.raw[old_index..old_index + old_len]),
                Some(&b.raw[new_index..new_index + new_len]),
            ),
        };
        out.push(Change {
            part: Part::Body,
            path: format!("/line/{line}"),
            kind,
            a: ra.map(|l| format!("{:?}", l.join("\n"))),
            b: rb.map(|l| format!("{:?}", l.join("\n"))),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(s: &str) -> Lines {
        let v: Vec<String> = s.lines().map(str::to_string).collect();
        Lines {
            norm: v.clone(),
            raw: v,
        }
    }

    #[test]
    fn one_inserted_line_is_one_change() {
        let mut out = Vec::new();
        compare(&lines("a\nb\nc"), &lines("a\nx\nb\nc"), &mut out);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].path, "/line/2");
        assert_eq!(out[0].kind, ChangeKind::Added);
    }
}
