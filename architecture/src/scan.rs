//! A small lexer for what the fitness test needs of Rust: the code without its tests,
//! comments and literals, and the paths it names.

/// How many lines of `text` come before its tests: the first top-level `#[cfg(test)]`
/// that marks a `mod` (on its line or the next). A `#[cfg(test)]` on a `use` or a
/// function is code like any other: cutting there would hide the rest of the file.
pub(crate) fn test_cut(text: &str) -> usize {
    let lines: Vec<&str> = text.lines().collect();
    let is_mod = |l: &str| {
        let l = l.trim_start();
        ["mod ", "pub mod ", "pub(crate) mod ", "pub(super) mod "]
            .iter()
            .any(|p| l.starts_with(p))
    };
    lines
        .iter()
        .enumerate()
        .position(|(i, l)| {
            l.strip_prefix("#[cfg(test)]").is_some_and(|rest| {
                is_mod(rest)
                    || (rest.trim().is_empty() && lines.get(i + 1).is_some_and(|n| is_mod(n)))
            })
        })
        .unwrap_or(lines.len())
}

/// The code before the file's tests ([`test_cut`]), with comments, string and character
/// literals blanked out (lifetimes are kept apart from characters).
pub fn non_test_code(text: &str) -> String {
    let code: String = text
        .lines()
        .take(test_cut(text))
        .collect::<Vec<_>>()
        .join("\n");
    let chars: Vec<char> = code.chars().collect();
    let mut out = String::with_capacity(code.len());
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        match (c, next) {
            ('/', Some('/')) => {
                while i < chars.len() && chars[i] != '\n' {
                    i += 1;
                }
            }
            ('/', Some('*')) => {
                let mut depth = 0;
                while i < chars.len() {
                    if chars[i] == '/' && chars.get(i + 1) == Some(&'*') {
                        depth += 1;
                        i += 2;
                    } else if chars[i] == '*' && chars.get(i + 1) == Some(&'/') {
                        depth -= 1;
                        i += 2;
                        if depth == 0 {
                            break;
                        }
                    } else {
                        i += 1;
                    }
                }
                out.push(' ');
            }
            ('r', Some('#' | '"')) if !ident_before(&chars, i) => {
                let mut j = i + 1;
                let mut hashes = 0;
                while chars.get(j) == Some(&'#') {
                    hashes += 1;
                    j += 1;
                }
                if chars.get(j) != Some(&'"') {
                    out.push(c);
                    i += 1;
                    continue;
                }
                j += 1;
                while j < chars.len() {
                    if chars[j] == '"' && (1..=hashes).all(|k| chars.get(j + k) == Some(&'#')) {
                        j += 1 + hashes;
                        break;
                    }
                    j += 1;
                }
                out.push_str("\"\"");
                i = j;
            }
            ('"', _) => {
                i += 1;
                while i < chars.len() && chars[i] != '"' {
                    i += if chars[i] == '\\' { 2 } else { 1 };
                }
                i += 1;
                out.push_str("\"\"");
            }
            ('\'', Some('\\')) => {
                i += 2;
                while i < chars.len() && chars[i] != '\'' {
                    i += 1;
                }
                i += 1;
                out.push_str("' '");
            }
            ('\'', Some(_)) if chars.get(i + 2) == Some(&'\'') => {
                i += 3;
                out.push_str("' '");
            }
            _ => {
                out.push(c);
                i += 1;
            }
        }
    }
    out
}

fn ident_before(chars: &[char], i: usize) -> bool {
    i > 0 && is_ident(chars[i - 1])
}

fn is_ident(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Ident(String),
    PathSep,
    Open,
    Close,
    Comma,
    Semi,
    Other(char),
}

fn tokens(code: &str) -> Vec<Token> {
    let chars: Vec<char> = code.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if is_ident(c) {
            let start = i;
            while i < chars.len() && is_ident(chars[i]) {
                i += 1;
            }
            out.push(Token::Ident(chars[start..i].iter().collect()));
            continue;
        }
        i += 1;
        out.push(match c {
            ':' if chars.get(i) == Some(&':') => {
                i += 1;
                Token::PathSep
            }
            '{' => Token::Open,
            '}' => Token::Close,
            ',' => Token::Comma,
            ';' => Token::Semi,
            c if c.is_whitespace() => continue,
            c => Token::Other(c),
        });
    }
    out
}

/// A path the code names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamedPath {
    /// Its segments, `self` left out (`use a::{self}` names `a`).
    pub segments: Vec<String>,
    /// For a path of a `pub use` (any visibility): the name it is exported as.
    pub exported_as: Option<String>,
}

/// Every path of two or more segments the code names: those of `use` trees expanded
/// (`use a::{b, c::d}` gives `a::b` and `a::c::d`), and every other `a::b…` not itself
/// the tail of a longer path.
pub fn paths(code: &str) -> Vec<NamedPath> {
    let t = tokens(code);
    let mut out = Vec::new();
    let mut i = 0;
    while i < t.len() {
        match &t[i] {
            Token::Ident(w) if w == "use" => {
                let public = is_pub(&t, i);
                i = use_tree(&t, i + 1, &[], public, &mut out);
            }
            Token::Ident(_) if i == 0 || t[i - 1] != Token::PathSep => {
                let (segments, end) = segments(&t, i);
                if segments.len() > 1 {
                    out.push(NamedPath {
                        segments,
                        exported_as: None,
                    });
                }
                i = end.max(i + 1);
            }
            _ => i += 1,
        }
    }
    out
}

/// Whether the `use` at `i` is `pub use` or `pub(…) use`.
fn is_pub(t: &[Token], i: usize) -> bool {
    let word = |k: usize| matches!(t.get(k), Some(Token::Ident(w)) if w == "pub");
    match i.checked_sub(1).and_then(|k| t.get(k)) {
        Some(Token::Ident(w)) => w == "pub",
        Some(Token::Other(')')) => (2..=5).any(|back| i >= back && word(i - back)),
        _ => false,
    }
}

/// `ident (:: ident)*` from `i`: the segments and where they end.
fn segments(t: &[Token], mut i: usize) -> (Vec<String>, usize) {
    let mut path = Vec::new();
    while let Some(Token::Ident(w)) = t.get(i) {
        path.push(w.clone());
        i += 1;
        if t.get(i) == Some(&Token::PathSep) && matches!(t.get(i + 1), Some(Token::Ident(_))) {
            i += 1;
        } else {
            break;
        }
    }
    (path, i)
}

/// Parses one use tree from `i` under `prefix`, pushing its paths; returns where it
/// ends (after its `;` at the top level).
fn use_tree(
    t: &[Token],
    i: usize,
    prefix: &[String],
    public: bool,
    out: &mut Vec<NamedPath>,
) -> usize {
    let (segs, mut i) = segments(t, i);
    let mut path: Vec<String> = prefix.to_vec();
    path.extend(segs.into_iter().filter(|s| s != "self"));
    if t.get(i) == Some(&Token::PathSep) && t.get(i + 1) == Some(&Token::Open) {
        i += 2;
        while i < t.len() && t[i] != Token::Close {
            i = use_tree(t, i, &path, public, out);
            if t.get(i) == Some(&Token::Comma) {
                i += 1;
            }
        }
        i += 1;
    } else if t.get(i) == Some(&Token::PathSep) {
        // `use a::*`: a glob over `a`.
        path.push("*".into());
        out.push(NamedPath {
            segments: path,
            exported_as: None,
        });
    } else if path.len() > 1 {
        let alias = match (t.get(i), t.get(i + 1)) {
            (Some(Token::Ident(a)), Some(Token::Ident(name))) if a == "as" => Some(name.clone()),
            _ => None,
        };
        let exported_as = public.then(|| alias.or_else(|| path.last().cloned()));
        out.push(NamedPath {
            segments: path,
            exported_as: exported_as.flatten().filter(|n| n != "_"),
        });
    }
    // Skip `as name`, a glob's `*`, up to the tree's end.
    while let Some(tok) = t.get(i) {
        match tok {
            Token::Comma | Token::Close => return i,
            Token::Semi if prefix.is_empty() => return i + 1,
            _ => i += 1,
        }
    }
    i
}
