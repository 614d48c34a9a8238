//! No two modules of a crate import each other (a house rule; issue 24 removed the last circles).
//!
//! Every workspace crate's `src/` is read as text: comments and string literals are blanked, then
//! each `use` tree and each `crate::…`, `super::…` and `self::…` path is resolved to the module it
//! names (the longest known module prefix, so `crate::labels::key` is `labels`). A module and its
//! own ancestors are not counted as a circle: a parent declares and re-exports its children, and a
//! child reaches the parent's items through `super::`. This is not a Rust parser; it is enough to
//! see `use super::{Reconciler, events::Event}` or `crate::nodepool::pool_body(..)`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Circles known and allowed, as (crate directory, module, module): none. A circle found later
/// goes here only with a comment naming the issue that removes it.
const KNOWN: &[(&str, &str, &str)] = &[];

#[test]
fn no_two_modules_of_a_crate_import_each_other() {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut found = Vec::new();
    for krate in crate_dirs(workspace) {
        let name = krate.strip_prefix(workspace).unwrap_or(&krate).to_string_lossy().replace('\\', "/");
        let name = if name.is_empty() { ".".to_string() } else { name };
        for (a, b, why) in circles(&krate.join("src")) {
            found.push((name.clone(), a, b, why));
        }
    }
    let mut problems = Vec::new();
    for (krate, a, b, why) in &found {
        if !KNOWN.contains(&(krate.as_str(), a.as_str(), b.as_str())) {
            problems.push(format!("{krate}: `{a}` and `{b}` import each other:\n{why}"));
        }
    }
    for (krate, a, b) in KNOWN {
        if !found.iter().any(|(k, x, y, _)| k == krate && x == a && y == b) {
            problems.push(format!("{krate}: `{a}` ↔ `{b}` is gone; remove it from KNOWN"));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n\n"));
}

#[test]
fn the_reader_sees_the_forms_modules_import_each_other_by() {
    let dir = std::env::temp_dir().join(format!("tessera-circles-{}", std::process::id()));
    let write = |path: &str, text: &str| {
        let path = dir.join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    };
    write("lib.rs", "mod a; mod b; mod c; mod d; mod e; mod f; mod g; pub struct Root;");
    // `use crate::{..}` one way, an inline `crate::` path the other.
    write("a.rs", "use crate::{Root, b::{self, Thing}};");
    write("b.rs", "pub struct Thing; fn f() { crate::a::g(); }");
    // A child's `super::` is its parent (not a circle); a sibling through `super::`, and a string
    // or a comment, are.
    write("c/mod.rs", "mod inner; pub use inner::X; // crate::d::nothing\n");
    write("c/inner.rs", "pub struct X; use super::super::d::Y; const S: &str = \"crate::e::z\";");
    write("d.rs", "pub struct Y; fn f() -> crate::c::inner::X { todo!() }");
    // A test module's `super::*` is its own file: no circle with the parent either.
    write("e.rs", "use crate::f::Z;\n#[cfg(test)]\nmod tests { use super::*; fn f() { let _ = ('{', '\\''); } }");
    write("f.rs", "pub struct Z; /* crate::e */ fn f() { let _ = r#\"crate::e\"#; }");
    write("g.rs", "fn f() { let _ = crate::e::tests; }");
    let pairs: Vec<(String, String)> = circles(&dir).into_iter().map(|(a, b, _)| (a, b)).collect();
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(pairs, vec![("a".to_string(), "b".to_string()), ("c::inner".to_string(), "d".to_string())]);
}

/// The workspace's crates: this one and every directory under `providers/` and `testkit/` with a
/// `src/`.
fn crate_dirs(workspace: &Path) -> Vec<PathBuf> {
    let mut dirs = vec![workspace.to_path_buf()];
    for group in ["providers", "testkit"] {
        let Ok(entries) = std::fs::read_dir(workspace.join(group)) else { continue };
        let mut found: Vec<PathBuf> = entries.flatten().map(|e| e.path()).filter(|p| p.join("src").is_dir()).collect();
        found.sort();
        dirs.extend(found);
    }
    dirs
}

/// Every pair of modules under `src` that import each other, as (module, module, where), the
/// modules in order and spelled `a::b` (the crate root is `crate`).
fn circles(src: &Path) -> Vec<(String, String, String)> {
    let files = rust_files(src);
    let modules: BTreeSet<Vec<String>> = files.iter().filter_map(|f| module_of(src, f)).collect();
    // (from, to) → the first place that says so.
    let mut edges: BTreeMap<(Vec<String>, Vec<String>), String> = BTreeMap::new();
    for file in &files {
        let Some(module) = module_of(src, file) else { continue };
        let Ok(text) = std::fs::read_to_string(file) else { continue };
        let shown = file.strip_prefix(src).unwrap_or(file).display().to_string();
        for (line, target) in references(&module, &blank_comments_and_strings(&text), &modules) {
            let related = target.starts_with(&module) || module.starts_with(&target);
            if !related {
                edges.entry((module.clone(), target)).or_insert_with(|| format!("  src/{shown}:{line}"));
            }
        }
    }
    let mut out = Vec::new();
    for ((a, b), why) in &edges {
        if a < b
            && let Some(back) = edges.get(&(b.clone(), a.clone()))
        {
            out.push((spelled(a), spelled(b), format!("{why} uses `{}`\n{back} uses `{}`", spelled(b), spelled(a))));
        }
    }
    out
}

fn spelled(module: &[String]) -> String {
    if module.is_empty() { "crate".to_string() } else { module.join("::") }
}

fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else { return out };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(rust_files(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
    out.sort();
    out
}

/// `lib.rs` is the root, `a/mod.rs` and `a.rs` are `a`, `a/b.rs` is `a::b`. `main.rs` and `bin/`
/// are other crates (a binary's), left out.
fn module_of(src: &Path, file: &Path) -> Option<Vec<String>> {
    let relative = file.strip_prefix(src).ok()?.with_extension("");
    let mut parts: Vec<String> = relative.iter().map(|p| p.to_string_lossy().into_owned()).collect();
    if parts.first().is_some_and(|p| p == "bin") || parts == ["main"] {
        return None;
    }
    if parts.last().is_some_and(|p| p == "mod" || p == "lib") {
        parts.pop();
    }
    Some(parts)
}

/// The text with every comment, string and character literal blanked (newlines kept, so lines
/// still count), so that only code is read.
fn blank_comments_and_strings(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    let keep_newlines =
        |s: &[char], out: &mut String| out.extend(s.iter().map(|&c| if c == '\n' { '\n' } else { ' ' }));
    while i < chars.len() {
        let rest = &chars[i..];
        let start = i;
        if rest.starts_with(&['/', '/']) {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
        } else if rest.starts_with(&['/', '*']) {
            let mut depth = 0;
            while i < chars.len() {
                if chars[i..].starts_with(&['/', '*']) {
                    depth += 1;
                    i += 2;
                } else if chars[i..].starts_with(&['*', '/']) {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    i += 1;
                }
            }
        } else if let Some(hashes) = raw_string_opening(rest) {
            i += hashes + 2 + usize::from(rest[0] == 'b');
            let closing: Vec<char> = std::iter::once('"').chain(std::iter::repeat_n('#', hashes)).collect();
            while i < chars.len() && !chars[i..].starts_with(&closing) {
                i += 1;
            }
            i = (i + closing.len()).min(chars.len());
        } else if rest[0] == '"' {
            i += 1;
            while i < chars.len() && chars[i] != '"' {
                i += if chars[i] == '\\' { 2 } else { 1 };
            }
            i = (i + 1).min(chars.len());
        } else if rest[0] == '\'' && (rest.get(1) == Some(&'\\') || rest.get(2) == Some(&'\'')) {
            // A character literal ('x', '\n', '\'', '\u{..}'); a lifetime ('a) has no closing
            // quote. Past the opening quote and the first character (with its backslash).
            i += if rest[1] == '\\' { 3 } else { 2 };
            while i < chars.len() && chars[i] != '\'' {
                i += 1;
            }
            i = (i + 1).min(chars.len());
        } else {
            out.push(chars[i]);
            i += 1;
            continue;
        }
        // An identifier must not run into what follows the blanked literal.
        keep_newlines(&chars[start..i.min(chars.len())], &mut out);
    }
    out
}

/// `r"`, `r#"`, `br##"`…: how many `#`s open it.
fn raw_string_opening(rest: &[char]) -> Option<usize> {
    let after_b = if rest.first() == Some(&'b') { &rest[1..] } else { rest };
    if after_b.first() != Some(&'r') {
        return None;
    }
    let hashes = after_b[1..].iter().take_while(|&&c| c == '#').count();
    (after_b.get(1 + hashes) == Some(&'"')).then_some(hashes)
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Ident(String),
    Path,
    Punct(char),
}

fn tokens(code: &str) -> Vec<(usize, Token)> {
    let mut out = Vec::new();
    for (n, line) in code.lines().enumerate() {
        let chars: Vec<char> = line.chars().collect();
        let mut i = 0;
        while i < chars.len() {
            let c = chars[i];
            if c.is_alphabetic() || c == '_' {
                let start = i;
                while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                    i += 1;
                }
                out.push((n + 1, Token::Ident(chars[start..i].iter().collect())));
            } else if c == ':' && chars.get(i + 1) == Some(&':') {
                out.push((n + 1, Token::Path));
                i += 2;
            } else {
                if !c.is_whitespace() {
                    out.push((n + 1, Token::Punct(c)));
                }
                i += 1;
            }
        }
    }
    out
}

/// Each module `module`'s code names, with the line that names it.
fn references(module: &[String], code: &str, modules: &BTreeSet<Vec<String>>) -> Vec<(usize, Vec<String>)> {
    let tokens = tokens(code);
    let mut out = Vec::new();
    // Inline `mod name { .. }` blocks open inside the file (`None` for any other brace).
    let mut braces: Vec<Option<String>> = Vec::new();
    let mut i = 0;
    while i < tokens.len() {
        let here: Vec<String> = module.iter().cloned().chain(braces.iter().flatten().cloned()).collect();
        let (line, token) = &tokens[i];
        match token {
            Token::Ident(word) if word == "use" => {
                let mut paths = Vec::new();
                i = use_tree(&tokens, i + 1, Vec::new(), &mut paths);
                out.extend(paths.iter().filter_map(|p| resolve(&here, p, modules)).map(|m| (*line, m)));
                continue;
            }
            Token::Ident(word) if word == "mod" => {
                if let (Some((_, Token::Ident(name))), Some((_, Token::Punct('{')))) =
                    (tokens.get(i + 1), tokens.get(i + 2))
                {
                    braces.push(Some(name.clone()));
                    i += 3;
                    continue;
                }
            }
            Token::Ident(word) if ["crate", "super", "self"].contains(&word.as_str()) => {
                let (path, next) = plain_path(&tokens, i);
                if path.len() > 1
                    && let Some(m) = resolve(&here, &path, modules)
                {
                    out.push((*line, m));
                }
                i = next;
                continue;
            }
            Token::Punct('{') => braces.push(None),
            Token::Punct('}') => {
                braces.pop();
            }
            _ => {}
        }
        i += 1;
    }
    out
}

/// `a::b::c` from `start`; returns it and where it ends.
fn plain_path(tokens: &[(usize, Token)], start: usize) -> (Vec<String>, usize) {
    let mut path = Vec::new();
    let mut i = start;
    while let Some((_, Token::Ident(word))) = tokens.get(i) {
        path.push(word.clone());
        i += 1;
        match (tokens.get(i), tokens.get(i + 1)) {
            (Some((_, Token::Path)), Some((_, Token::Ident(_)))) => i += 1,
            _ => break,
        }
    }
    (path, i)
}

/// Reads a use tree from `i` (after `use`, or inside a group) onto `prefix`, pushing each path it
/// names; returns where it ends (after `;`, or at the `,`/`}` that closes it in a group).
fn use_tree(tokens: &[(usize, Token)], mut i: usize, mut prefix: Vec<String>, paths: &mut Vec<Vec<String>>) -> usize {
    while let Some((_, token)) = tokens.get(i) {
        match token {
            Token::Ident(word) if word == "as" => i += 2,
            Token::Ident(word) if word == "self" && !prefix.is_empty() => i += 1,
            Token::Ident(word) => {
                prefix.push(word.clone());
                i += 1;
            }
            Token::Path => i += 1,
            Token::Punct('*') => i += 1,
            Token::Punct('{') => {
                i += 1;
                while let Some((_, t)) = tokens.get(i) {
                    match t {
                        Token::Punct('}') => {
                            i += 1;
                            break;
                        }
                        Token::Punct(',') => i += 1,
                        _ => i = use_tree(tokens, i, prefix.clone(), paths),
                    }
                }
                return if tokens.get(i).is_some_and(|(_, t)| *t == Token::Punct(';')) { i + 1 } else { i };
            }
            Token::Punct(';') => {
                paths.push(prefix);
                return i + 1;
            }
            _ => {
                // `,` or `}` of the enclosing group.
                paths.push(prefix);
                return i;
            }
        }
    }
    paths.push(prefix);
    i
}

/// The module a path from `here` names: the longest known module it starts with, or `None` for
/// another crate's.
fn resolve(here: &[String], path: &[String], modules: &BTreeSet<Vec<String>>) -> Option<Vec<String>> {
    let mut absolute: Vec<String> = match path.first()?.as_str() {
        "crate" => path[1..].to_vec(),
        "self" => here.iter().chain(&path[1..]).cloned().collect(),
        "super" => {
            let ups = path.iter().take_while(|p| *p == "super").count();
            let base = here.get(..here.len().checked_sub(ups)?)?;
            base.iter().chain(&path[ups..]).cloned().collect()
        }
        // A child module named from its parent (`use tick::X` in `mod.rs`); otherwise another
        // crate, or a name brought in by an earlier `use` (already counted there).
        first => {
            let child: Vec<String> = here.iter().cloned().chain([first.to_string()]).collect();
            if !modules.contains(&child) {
                return None;
            }
            here.iter().chain(path).cloned().collect()
        }
    };
    while !modules.contains(&absolute) {
        absolute.pop()?;
    }
    // `here` may be inside an inline module the file list does not know of.
    Some(absolute)
}
