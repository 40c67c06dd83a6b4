//! Reading YAML into JSON values: what people paste (kubectl output, manifests, Helm renders) and
//! YAML scenario files. Written here, not taken from a YAML library, because a full YAML reader was
//! the largest single piece of the WebAssembly after the simulation itself (about 30 KB gzipped) and
//! Kubernetes objects use a small part of YAML. What it reads, as YAML 1.2 and serde_yaml 0.9 read it
//! into JSON values (the tests compare the two on every shape below):
//! - documents separated by `---` and ended by `...`; `%` directives; comments;
//! - block mappings and sequences by indentation, including `- key: value` entries and a sequence
//!   written at the same indentation as its key;
//! - flow collections (`[a, b]`, `{a: 1}`) over any number of lines;
//! - plain scalars over several lines, single- and double-quoted scalars with all YAML escapes, and
//!   literal (`|`) and folded (`>`) block scalars with chomping and indentation indicators;
//! - anchors and aliases (with a limit on how much aliases may expand), and the core tags `!!str`,
//!   `!!int`, `!!float`, `!!bool`, `!!null`, `!!map`, `!!seq`;
//! - plain scalars resolve as serde_yaml resolves them: `null`/`~`/empty, `true`/`false` (three
//!   spellings each), integers (with `0x`, `0o`, `0b`; a leading zero keeps digits a string), floats
//!   (`.inf`/`.nan` become JSON null, which has neither); everything else is a string.
//!
//! Complex keys (`? `), other tags and tabs used to indent are refused with a message that says where.
use serde_json::{Map, Number, Value};
use std::collections::HashMap;

/// How deeply collections may nest.
const MAX_DEPTH: usize = 256;
/// How many nodes aliases may add in all (a "billion laughs" document is refused, not expanded).
const MAX_ALIAS_NODES: usize = 1_000_000;

/// Every document in `text`, in order (an empty document is `null`).
pub fn documents(text: &str) -> Result<Vec<Value>, String> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let normal;
    let text = if text.contains('\r') {
        normal = text.replace("\r\n", "\n").replace('\r', "\n");
        normal.as_str()
    } else {
        text
    };
    let mut r = Reader {
        s: text.as_bytes(),
        pos: 0,
        anchors: HashMap::new(),
        alias_nodes: 0,
        depth: 0,
        flow: 0,
        raw_plain: None,
    };
    let mut docs = Vec::new();
    loop {
        r.skip_blank_lines()?;
        while r.col() == 0 && r.peek() == b'%' {
            r.skip_line();
            r.skip_blank_lines()?;
        }
        if r.eof() {
            break;
        }
        let explicit = r.at_marker(b"---");
        if explicit {
            r.pos += 3;
        } else if r.at_marker(b"...") {
            r.pos += 3;
            r.end_of_line()?;
            continue;
        }
        r.anchors.clear();
        let v = r.block_node(-1, true, true)?;
        r.skip_blank_lines()?;
        if r.at_marker(b"...") {
            r.pos += 3;
            r.end_of_line()?;
        } else if !r.eof() && !r.at_marker(b"---") {
            return Err(r.err("unexpected text after the end of the document (is it indented less than it should be?)"));
        }
        docs.push(v);
    }
    Ok(docs)
}

/// The one document in `text`; an error if there are several (an empty text is `null`).
pub fn one(text: &str) -> Result<Value, String> {
    let mut docs = documents(text)?;
    if docs.len() > 1 {
        return Err(format!("expected one YAML document, found {}", docs.len()));
    }
    Ok(docs.pop().unwrap_or(Value::Null))
}

struct Reader<'a> {
    s: &'a [u8],
    pos: usize,
    /// Each anchor's value and its size in nodes.
    anchors: HashMap<String, (Value, usize)>,
    alias_nodes: usize,
    depth: usize,
    /// How many flow collections (`[`, `{`) are open: inside them tabs may separate tokens.
    flow: usize,
    /// The text of the plain scalar just read, so that `!!str` can keep it as written.
    raw_plain: Option<String>,
}

fn blank(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | 0)
}

fn flow_indicator(b: u8) -> bool {
    matches!(b, b',' | b'[' | b']' | b'{' | b'}')
}

/// The number of nodes in `v`, for the alias limit.
fn size(v: &Value) -> usize {
    match v {
        Value::Array(a) => 1 + a.iter().map(size).sum::<usize>(),
        Value::Object(m) => 1 + m.values().map(size).sum::<usize>(),
        _ => 1,
    }
}

impl Reader<'_> {
    fn peek(&self) -> u8 {
        self.at(0)
    }

    fn at(&self, off: usize) -> u8 {
        self.s.get(self.pos + off).copied().unwrap_or(0)
    }

    fn eof(&self) -> bool {
        self.pos >= self.s.len()
    }

    fn line_start(&self) -> usize {
        self.s[..self.pos]
            .iter()
            .rposition(|&b| b == b'\n')
            .map_or(0, |i| i + 1)
    }

    fn col(&self) -> usize {
        self.pos - self.line_start()
    }

    fn err(&self, msg: &str) -> String {
        let line = self.s[..self.pos.min(self.s.len())]
            .iter()
            .filter(|&&b| b == b'\n')
            .count()
            + 1;
        let col = std::str::from_utf8(&self.s[self.line_start()..self.pos.min(self.s.len())])
            .map_or(0, |t| t.chars().count())
            + 1;
        format!("{msg} at line {line} column {col}")
    }

    /// A document marker (`---` or `...`) at the start of this line.
    fn at_marker(&self, m: &[u8]) -> bool {
        self.col() == 0 && self.s[self.pos..].starts_with(m) && blank(self.at(3))
    }

    fn at_doc_end(&self) -> bool {
        self.eof() || self.at_marker(b"---") || self.at_marker(b"...")
    }

    fn skip_line(&mut self) {
        while !self.eof() && self.peek() != b'\n' {
            self.pos += 1;
        }
    }

    /// Spaces and a comment to the end of this line; an error if anything else is left on it.
    fn end_of_line(&mut self) -> Result<(), String> {
        self.skip_spaces();
        if self.peek() == b'#' {
            self.skip_line();
        }
        if !self.eof() && self.peek() != b'\n' {
            return Err(self.err("unexpected text"));
        }
        Ok(())
    }

    fn skip_spaces(&mut self) {
        while matches!(self.peek(), b' ' | b'\t') {
            self.pos += 1;
        }
    }

    /// Skips spaces, comments and line breaks up to the next content. A tab before content on a
    /// line (where YAML wants spaces for indentation) is an error.
    fn skip_blank_lines(&mut self) -> Result<(), String> {
        loop {
            let line_begin = self.col() == 0;
            let start = self.pos;
            self.skip_spaces();
            match self.peek() {
                b'#' => self.skip_line(),
                b'\n' => {}
                _ if self.eof() => return Ok(()),
                _ => {
                    if line_begin && self.flow == 0 && self.s[start..self.pos].contains(&b'\t') {
                        return Err(self.err("a tab indents this line (YAML indents with spaces)"));
                    }
                    return Ok(());
                }
            }
            if self.peek() == b'\n' {
                self.pos += 1;
            }
        }
    }

    fn enter(&mut self) -> Result<(), String> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(self.err("the YAML nests too deeply"));
        }
        Ok(())
    }

    /// A node in block context whose parent is indented `parent` columns (-1 at the top). It may
    /// start on this line or on a later one. `seq_same` lets a sequence sit at the parent's
    /// indentation (`key:` then `- a`); `map_here` is false right after `key: `, where a mapping
    /// cannot start on the same line.
    fn block_node(
        &mut self,
        parent: isize,
        seq_same: bool,
        map_here: bool,
    ) -> Result<Value, String> {
        let start_line = self.line_start();
        self.skip_blank_lines()?;
        let same_line = self.line_start() == start_line;
        if self.at_doc_end() {
            return Ok(Value::Null);
        }
        let col = self.col() as isize;
        let is_entry = self.peek() == b'-' && blank(self.at(1));
        if !same_line && (col < parent || (col == parent && !(seq_same && is_entry))) {
            return Ok(Value::Null);
        }
        let map_here = map_here || !same_line;
        self.enter()?;
        let (anchor, tag) = self.properties()?;
        let v = if anchor.is_some() || tag.is_some() {
            // Properties may stand alone on their line, with the node below them.
            if matches!(self.peek(), b'\n' | b'#' | 0) {
                self.block_node(parent, seq_same, true)?
            } else {
                self.block_node_here(parent, col, map_here)?
            }
        } else {
            self.block_node_here(parent, col, map_here)?
        };
        self.finish_node(v, anchor, tag)
    }

    /// A node read: leaves its depth, applies its tag and records its anchor.
    fn finish_node(
        &mut self,
        v: Value,
        anchor: Option<String>,
        tag: Option<String>,
    ) -> Result<Value, String> {
        self.depth -= 1;
        let raw = self.raw_plain.take();
        let v = apply_tag(tag.as_deref(), v, raw).map_err(|e| self.err(&e))?;
        if let Some(a) = anchor {
            let n = size(&v);
            self.anchors.insert(a, (v.clone(), n));
        }
        Ok(v)
    }

    /// `&anchor` and `!tag`, in either order, each followed by spaces.
    fn properties(&mut self) -> Result<(Option<String>, Option<String>), String> {
        let (mut anchor, mut tag) = (None, None);
        loop {
            match self.peek() {
                b'&' if anchor.is_none() => {
                    self.pos += 1;
                    anchor = Some(self.name("an anchor name after `&`")?);
                }
                b'!' if tag.is_none() => {
                    let start = self.pos;
                    while !blank(self.peek()) {
                        self.pos += 1;
                    }
                    tag = Some(String::from_utf8_lossy(&self.s[start..self.pos]).into_owned());
                }
                _ => return Ok((anchor, tag)),
            }
            self.skip_spaces();
        }
    }

    fn name(&mut self, what: &str) -> Result<String, String> {
        let start = self.pos;
        while !blank(self.peek()) && !flow_indicator(self.peek()) {
            self.pos += 1;
        }
        if start == self.pos {
            return Err(self.err(&format!("expected {what}")));
        }
        Ok(String::from_utf8_lossy(&self.s[start..self.pos]).into_owned())
    }

    fn alias(&mut self) -> Result<Value, String> {
        self.pos += 1;
        let name = self.name("an anchor name after `*`")?;
        let Some((v, n)) = self.anchors.get(&name) else {
            return Err(self.err(&format!("unknown anchor `{name}`")));
        };
        self.alias_nodes += n;
        if self.alias_nodes > MAX_ALIAS_NODES {
            return Err(self.err("aliases expand to too many nodes"));
        }
        Ok(v.clone())
    }

    /// The node that starts at this position, in column `col`.
    fn block_node_here(
        &mut self,
        parent: isize,
        col: isize,
        map_here: bool,
    ) -> Result<Value, String> {
        match self.peek() {
            b'-' if blank(self.at(1)) => {
                if !map_here {
                    return Err(self.err("a sequence cannot start on the line of its key"));
                }
                self.block_seq(col)
            }
            b'?' if blank(self.at(1)) => {
                Err(self.err("complex mapping keys (`? `) are not supported"))
            }
            b'|' | b'>' => self.block_scalar(parent),
            b'*' => {
                let v = self.alias()?;
                self.check_not_key(map_here)?;
                Ok(v)
            }
            b'[' | b'{' => {
                let v = self.flow_node()?;
                self.check_not_key(map_here)?;
                Ok(v)
            }
            _ => {
                // A scalar, or the first key of a mapping.
                let start = self.pos;
                let key = self.key_scalar()?;
                self.skip_spaces();
                if self.peek() == b':' && blank(self.at(1)) && key.is_some() {
                    if !map_here {
                        return Err(self.err("a mapping cannot start on the line of its key"));
                    }
                    self.pos = start;
                    return self.block_map(col);
                }
                self.pos = start;
                match self.peek() {
                    b'"' | b'\'' => self.quoted(),
                    _ => {
                        let raw = self.plain(parent, false)?;
                        let v = resolve(&raw);
                        self.raw_plain = Some(raw);
                        Ok(v)
                    }
                }
            }
        }
    }

    /// A flow collection or alias used as a mapping key is not supported; say so clearly.
    fn check_not_key(&mut self, map_here: bool) -> Result<(), String> {
        let here = self.pos;
        self.skip_spaces();
        if self.peek() == b':' && blank(self.at(1)) {
            return Err(self.err(if map_here {
                "collections and aliases as mapping keys are not supported"
            } else {
                "a mapping cannot start on the line of its key"
            }));
        }
        self.pos = here;
        Ok(())
    }

    /// A key on one line: quoted, or plain up to `: `. None when what is here cannot be a key.
    fn key_scalar(&mut self) -> Result<Option<String>, String> {
        Ok(match self.peek() {
            b'"' | b'\'' => match self.quoted()? {
                Value::String(s) => Some(s),
                _ => None,
            },
            _ => {
                let start = self.pos;
                self.plain_line(false);
                Some(
                    String::from_utf8_lossy(&self.s[start..self.pos])
                        .trim_end()
                        .to_string(),
                )
            }
        })
    }

    fn block_map(&mut self, col: isize) -> Result<Value, String> {
        let mut m = Map::new();
        loop {
            if self.peek() == b'?' && blank(self.at(1)) {
                return Err(self.err("complex mapping keys (`? `) are not supported"));
            }
            if matches!(self.peek(), b'[' | b'{' | b'*' | b'&' | b'!') {
                return Err(self.err("only plain or quoted text can be a mapping key here"));
            }
            let key = self.key_scalar()?.unwrap_or_default();
            self.skip_spaces();
            if !(self.peek() == b':' && blank(self.at(1))) {
                return Err(self.err("expected `:` after a mapping key"));
            }
            self.pos += 1;
            self.skip_spaces();
            let v = if matches!(self.peek(), b'\n' | b'#' | 0) {
                self.block_node(col, true, true)?
            } else {
                self.block_node(col, false, false)?
            };
            m.insert(key, v);
            self.skip_blank_lines()?;
            if self.at_doc_end() {
                break;
            }
            let c = self.col() as isize;
            if c < col {
                break;
            }
            if c > col {
                return Err(self.err("this line is indented more than the mapping it is in"));
            }
            if self.peek() == b'-' && blank(self.at(1)) {
                return Err(self.err("a sequence entry where a mapping key was expected"));
            }
        }
        Ok(Value::Object(m))
    }

    fn block_seq(&mut self, col: isize) -> Result<Value, String> {
        let mut items = Vec::new();
        loop {
            self.pos += 1; // the `-`
            self.skip_spaces();
            // The entry: on this line (`- a`, `- k: v`, `- - a`) or indented below.
            items.push(self.block_node(col, false, true)?);
            self.skip_blank_lines()?;
            if self.at_doc_end() {
                break;
            }
            let c = self.col() as isize;
            if c < col || (c == col && !(self.peek() == b'-' && blank(self.at(1)))) {
                break;
            }
            if c > col {
                return Err(self.err("this line is indented more than the sequence it is in"));
            }
        }
        Ok(Value::Array(items))
    }

    /// Moves over plain text on this line, up to `: `, ` #` or the line's end (and in flow context,
    /// up to a flow indicator or `:` before one).
    fn plain_line(&mut self, flow: bool) {
        while !self.eof() {
            let b = self.peek();
            if b == b'\n'
                || (b == b':' && (blank(self.at(1)) || (flow && flow_indicator(self.at(1)))))
                || (flow && flow_indicator(b))
                || (b == b'#' && self.pos > 0 && matches!(self.s[self.pos - 1], b' ' | b'\t'))
            {
                break;
            }
            self.pos += 1;
        }
    }

    /// A plain scalar, over more lines while they are indented more than `parent`; line breaks
    /// fold to spaces and empty lines to newlines.
    fn plain(&mut self, parent: isize, flow: bool) -> Result<String, String> {
        let b = self.peek();
        if matches!(b, b'@' | b'`') || ((b == b'%') && self.col() == 0) {
            return Err(self.err(&format!("a plain scalar cannot start with `{}`", b as char)));
        }
        let mut out = String::new();
        loop {
            let start = self.pos;
            self.plain_line(flow);
            out.push_str(
                String::from_utf8_lossy(&self.s[start..self.pos]).trim_end_matches([' ', '\t']),
            );
            if self.peek() != b'\n' {
                break;
            }
            // Look past line breaks for a continuation line.
            let save = self.pos;
            let mut breaks = 0;
            let mut p = self.pos;
            let cont = loop {
                if p >= self.s.len() {
                    break None;
                }
                if self.s[p] == b'\n' {
                    breaks += 1;
                    p += 1;
                    continue;
                }
                let line = p;
                while p < self.s.len() && matches!(self.s[p], b' ' | b'\t') {
                    p += 1;
                }
                if p >= self.s.len() || self.s[p] == b'\n' {
                    continue;
                }
                let indent = (p - line) as isize;
                self.pos = line;
                let marker = self.at_doc_end();
                let stop = self.s[p] == b'#'
                    || marker
                    || (!flow && indent <= parent)
                    || (flow && flow_indicator(self.s[p]));
                break if stop { None } else { Some(p) };
            };
            match cont {
                None => {
                    self.pos = save;
                    break;
                }
                Some(p) => {
                    if breaks <= 1 {
                        out.push(' ');
                    } else {
                        out.extend(std::iter::repeat_n('\n', breaks - 1));
                    }
                    self.pos = p;
                    // A continuation line may not hold `key: value`.
                    let here = self.pos;
                    self.plain_line(flow);
                    let hit_colon = self.peek() == b':';
                    self.pos = here;
                    if hit_colon && !flow {
                        return Err(self.err("a mapping key inside a multi-line plain scalar (check the indentation)"));
                    }
                }
            }
        }
        Ok(out)
    }

    /// The line break here, as YAML 1.1 (and so serde_yaml) reads one in a quoted scalar: `\n` and
    /// NEL fold like a newline; LS and PS are kept as they are. With its length in bytes.
    fn break_here(&self) -> Option<(char, usize)> {
        match (self.peek(), self.at(1), self.at(2)) {
            (b'\n', _, _) => Some(('\n', 1)),
            (0xC2, 0x85, _) => Some(('\n', 2)),
            (0xE2, 0x80, 0xA8) => Some(('\u{2028}', 3)),
            (0xE2, 0x80, 0xA9) => Some(('\u{2029}', 3)),
            _ => None,
        }
    }

    /// Folds a line break inside a quoted scalar: spaces before it are dropped, the next lines'
    /// leading spaces too. A first break that is a newline becomes a space when it is the only
    /// one, and the further breaks are kept; a first break that is LS or PS is kept, with the rest.
    fn fold_break(&mut self, out: &mut String, keep: usize) -> Result<(), String> {
        out.truncate(keep);
        let mut first = None;
        let mut more = String::new();
        loop {
            if let Some((b, n)) = self.break_here() {
                match first {
                    None => first = Some(b),
                    Some(_) => more.push(b),
                }
                self.pos += n;
            } else if matches!(self.peek(), b' ' | b'\t') {
                self.pos += 1;
            } else {
                break;
            }
        }
        if self.at_doc_end() {
            return Err(self.err("a quoted scalar is not closed"));
        }
        match first {
            Some('\n') if more.is_empty() => out.push(' '),
            Some('\n') | None => out.push_str(&more),
            Some(b) => {
                out.push(b);
                out.push_str(&more);
            }
        }
        Ok(())
    }

    fn char_here(&self) -> char {
        std::str::from_utf8(&self.s[self.pos..(self.pos + 4).min(self.s.len())])
            .or_else(|e| std::str::from_utf8(&self.s[self.pos..self.pos + e.valid_up_to()]))
            .ok()
            .and_then(|t| t.chars().next())
            .unwrap_or('\u{fffd}')
    }

    /// A single- or double-quoted scalar (which one, by the quote here).
    fn quoted(&mut self) -> Result<Value, String> {
        let q = self.peek();
        let open = self.pos;
        self.pos += 1;
        let mut out = String::new();
        let mut keep = 0;
        loop {
            match self.peek() {
                _ if self.eof() => {
                    self.pos = open;
                    let which = if q == b'"' { "double" } else { "single" };
                    return Err(self.err(&format!("a {which}-quoted scalar is not closed")));
                }
                b'\'' if q == b'\'' && self.at(1) == b'\'' => {
                    out.push('\'');
                    self.pos += 2;
                }
                c if c == q => {
                    self.pos += 1;
                    return Ok(Value::String(out));
                }
                _ if self.break_here().is_some() => self.fold_break(&mut out, keep)?,
                b'\\' if q == b'"' => {
                    self.escape(&mut out)?;
                    keep = out.len();
                    continue;
                }
                _ => {
                    let ch = self.char_here();
                    out.push(ch);
                    self.pos += ch.len_utf8();
                }
            }
            if !matches!(out.as_bytes().last(), Some(b' ' | b'\t')) {
                keep = out.len();
            }
        }
    }

    /// A double-quoted scalar's escape, from its backslash.
    fn escape(&mut self, out: &mut String) -> Result<(), String> {
        self.pos += 1;
        let e = self.peek();
        self.pos += 1;
        let simple = match e {
            b'0' => Some('\0'),
            b'a' => Some('\x07'),
            b'b' => Some('\x08'),
            b't' | b'\t' => Some('\t'),
            b'n' => Some('\n'),
            b'v' => Some('\x0b'),
            b'f' => Some('\x0c'),
            b'r' => Some('\r'),
            b'e' => Some('\x1b'),
            b' ' => Some(' '),
            b'"' => Some('"'),
            b'/' => Some('/'),
            b'\\' => Some('\\'),
            b'N' => Some('\u{85}'),
            b'_' => Some('\u{a0}'),
            b'L' => Some('\u{2028}'),
            b'P' => Some('\u{2029}'),
            _ => None,
        };
        match (simple, e) {
            (Some(c), _) => out.push(c),
            (None, b'x' | b'u' | b'U') => {
                let n = match e {
                    b'x' => 2,
                    b'u' => 4,
                    _ => 8,
                };
                let hex = std::str::from_utf8(self.s.get(self.pos..self.pos + n).unwrap_or(b""))
                    .unwrap_or("");
                let c = u32::from_str_radix(hex, 16)
                    .ok()
                    .filter(|_| hex.len() == n)
                    .and_then(char::from_u32);
                let Some(c) = c else {
                    return Err(self.err(&format!(
                        "`\\{}` needs {n} hex digits of a valid character",
                        e as char
                    )));
                };
                out.push(c);
                self.pos += n;
            }
            (None, b'\n') => {
                // An escaped line break joins the lines without a space.
                self.skip_spaces();
                while self.peek() == b'\n' {
                    out.push('\n');
                    self.pos += 1;
                    self.skip_spaces();
                }
                // The first escaped break adds nothing; only the empty lines after it count.
            }
            _ => {
                self.pos -= 1;
                return Err(self.err("unknown escape in a double-quoted scalar"));
            }
        }
        Ok(())
    }

    /// A literal (`|`) or folded (`>`) block scalar; its lines are indented more than `parent`.
    fn block_scalar(&mut self, parent: isize) -> Result<Value, String> {
        let folded = self.peek() == b'>';
        self.pos += 1;
        let (mut chomp, mut explicit) = (b' ', None);
        for _ in 0..2 {
            match self.peek() {
                b'+' | b'-' if chomp == b' ' => chomp = self.peek(),
                b'1'..=b'9' if explicit.is_none() => explicit = Some((self.peek() - b'0') as usize),
                _ => break,
            }
            self.pos += 1;
        }
        if !blank(self.peek()) && self.peek() != b'#' {
            return Err(self.err("expected the end of the line after a block scalar's `|` or `>`"));
        }
        self.end_of_line()?;
        let base = parent.max(0) as usize + usize::from(parent >= 0);
        let mut indent = explicit.map(|n| if parent < 0 { n } else { parent as usize + n });
        let mut lines: Vec<&str> = Vec::new();
        while !self.eof() {
            // self.pos is at a line break.
            let line = self.pos + 1;
            let end = self.s[line..]
                .iter()
                .position(|&b| b == b'\n')
                .map_or(self.s.len(), |i| line + i);
            let text = &self.s[line..end];
            let spaces = text.iter().take_while(|&&b| b == b' ').count();
            let empty = text[spaces..].iter().all(|&b| b == b' ' || b == b'\t');
            let want = match indent {
                Some(n) => n,
                None if empty => {
                    lines.push("");
                    self.pos = end;
                    continue;
                }
                None => {
                    if spaces < base {
                        break;
                    }
                    indent = Some(spaces);
                    spaces
                }
            };
            if empty && spaces <= want {
                lines.push("");
            } else if spaces < want {
                break;
            } else {
                lines.push(
                    std::str::from_utf8(&text[want..]).map_err(|_| self.err("invalid UTF-8"))?,
                );
            }
            self.pos = end;
        }
        // Trailing empty lines belong to the chomping, not the content; stop before them so that
        // the next node starts on its own line.
        let last = lines.iter().rposition(|l| !l.is_empty());
        let trailing = last.map_or(lines.len(), |i| lines.len() - 1 - i);
        let body = &lines[..last.map_or(0, |i| i + 1)];
        let mut out = String::new();
        if folded {
            // Between two lines of text a line break folds to a space; empty lines between them stay
            // as newlines; around a more-indented line every break stays.
            let (mut empties, mut prev_more, mut first) = (0, false, true);
            for l in body {
                if l.is_empty() {
                    empties += 1;
                    continue;
                }
                let more = l.starts_with([' ', '\t']);
                if first {
                    out.extend(std::iter::repeat_n('\n', empties));
                } else if empties == 0 && !more && !prev_more {
                    out.push(' ');
                } else if !more && !prev_more {
                    out.extend(std::iter::repeat_n('\n', empties));
                } else {
                    out.extend(std::iter::repeat_n('\n', empties + 1));
                }
                first = false;
                out.push_str(l);
                empties = 0;
                prev_more = more;
            }
        } else {
            out = body.join("\n");
        }
        match chomp {
            b'-' => {}
            b'+' => {
                if last.is_some() {
                    out.push('\n');
                }
                out.extend(std::iter::repeat_n('\n', trailing));
            }
            _ => {
                if last.is_some() {
                    out.push('\n');
                }
            }
        }
        Ok(Value::String(out))
    }

    /// A node in flow context (inside `[]` or `{}`), which may run over lines.
    fn flow_node(&mut self) -> Result<Value, String> {
        self.enter()?;
        self.skip_blank_lines()?;
        let (anchor, tag) = self.properties()?;
        self.skip_blank_lines()?;
        let v = match self.peek() {
            b'[' => self.flow_collection(false)?,
            b'{' => self.flow_collection(true)?,
            b'"' | b'\'' => self.quoted()?,
            b'*' => self.alias()?,
            b']' | b'}' | b',' => Value::Null,
            0 => return Err(self.err("a flow collection is not closed")),
            _ => {
                let raw = self.plain(-1, true)?;
                let v = resolve(&raw);
                self.raw_plain = Some(raw);
                v
            }
        };
        self.finish_node(v, anchor, tag)
    }

    /// After a flow entry: `:` (a key's value follows), `,`, or the closing bracket.
    fn flow_colon(&mut self, quoted_key: bool) -> Result<bool, String> {
        self.skip_blank_lines()?;
        Ok(self.peek() == b':' && (quoted_key || blank(self.at(1)) || flow_indicator(self.at(1))))
    }

    /// A flow sequence (`[a, b]`, where `a: 1` is a one-pair mapping) or mapping (`{a: 1, b}`),
    /// from its opening bracket to its closing one. (An error ends the whole reading, so the
    /// count of open collections need not be restored on the way out.)
    fn flow_collection(&mut self, map: bool) -> Result<Value, String> {
        let (close, what) = if map {
            (b'}', "mapping `{`")
        } else {
            (b']', "sequence `[`")
        };
        let open = self.pos;
        self.pos += 1;
        self.flow += 1;
        let (mut items, mut m) = (Vec::new(), Map::new());
        loop {
            self.skip_blank_lines()?;
            if self.peek() == close {
                self.pos += 1;
                break;
            }
            if self.eof() {
                self.pos = open;
                return Err(self.err(&format!("a flow {what} is not closed")));
            }
            if map && self.peek() == b'?' && blank(self.at(1)) {
                return Err(self.err("complex mapping keys (`? `) are not supported"));
            }
            let quoted = matches!(self.peek(), b'"' | b'\'');
            let v = self.flow_node()?;
            if self.flow_colon(quoted)? {
                self.pos += 1;
                let key = key_text(v).map_err(|e| self.err(&e))?;
                let value = self.flow_value()?;
                if map {
                    m.insert(key, value);
                } else {
                    items.push(Value::Object(Map::from_iter([(key, value)])));
                }
            } else if map {
                m.insert(key_text(v).map_err(|e| self.err(&e))?, Value::Null);
            } else {
                items.push(v);
            }
            self.skip_blank_lines()?;
            match self.peek() {
                b',' => self.pos += 1,
                c if c == close && !self.eof() => {}
                _ if self.eof() => {
                    self.pos = open;
                    return Err(self.err(&format!("a flow {what} is not closed")));
                }
                _ => {
                    return Err(self.err(&format!(
                        "expected `,` or `{}` in a flow {what}",
                        close as char
                    )))
                }
            }
        }
        self.flow -= 1;
        Ok(if map {
            Value::Object(m)
        } else {
            Value::Array(items)
        })
    }

    /// The value after a flow key's `:` (null when there is none).
    fn flow_value(&mut self) -> Result<Value, String> {
        self.skip_blank_lines()?;
        if matches!(self.peek(), b',' | b']' | b'}') {
            Ok(Value::Null)
        } else {
            self.flow_node()
        }
    }
}

/// A flow key as map text: a scalar's text (JSON objects have only string keys).
fn key_text(v: Value) -> Result<String, String> {
    match v {
        Value::String(s) => Ok(s),
        Value::Null => Ok("null".into()),
        Value::Bool(b) => Ok(b.to_string()),
        Value::Number(n) => Ok(n.to_string()),
        _ => Err("collections as mapping keys are not supported".into()),
    }
}

/// What a plain scalar means (serde_yaml 0.9's resolution; see the module comment).
fn resolve(s: &str) -> Value {
    match s {
        "" | "~" | "null" | "Null" | "NULL" => return Value::Null,
        "true" | "True" | "TRUE" => return Value::Bool(true),
        "false" | "False" | "FALSE" => return Value::Bool(false),
        _ => {}
    }
    if let Some(v) = integer(s) {
        return v;
    }
    if !leading_zero_digits(s) {
        if let Some(f) = float(s) {
            return Number::from_f64(f).map_or(Value::Null, Value::Number);
        }
    }
    Value::String(s.to_string())
}

/// Digits with a leading zero (`0123`, `-007`): a string in YAML 1.2, not an octal number.
fn leading_zero_digits(s: &str) -> bool {
    let d = s.strip_prefix(['-', '+']).unwrap_or(s);
    d.len() > 1 && d.starts_with('0') && d.bytes().all(|b| b.is_ascii_digit())
}

fn integer(s: &str) -> Option<Value> {
    let (neg, digits) = match s.as_bytes().first()? {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    if digits.starts_with(['+', '-']) || digits.is_empty() {
        return None;
    }
    let (radix, body) = match digits.get(..2) {
        Some("0x") => (16, &digits[2..]),
        Some("0o") => (8, &digits[2..]),
        Some("0b") => (2, &digits[2..]),
        _ => (10, digits),
    };
    if body.is_empty() || body.starts_with(['+', '-']) || (radix == 10 && leading_zero_digits(s)) {
        return None;
    }
    let magnitude = u128::from_str_radix(body, radix).ok()?;
    if neg {
        let v = i128::try_from(magnitude).ok().map(|m| -m)?;
        match i64::try_from(v) {
            Ok(i) => Some(Value::Number(i.into())),
            Err(_) => Some(Number::from_f64(v as f64).map_or(Value::Null, Value::Number)),
        }
    } else {
        match u64::try_from(magnitude) {
            Ok(u) => Some(Value::Number(u.into())),
            Err(_) => Some(Number::from_f64(magnitude as f64).map_or(Value::Null, Value::Number)),
        }
    }
}

fn float(s: &str) -> Option<f64> {
    let unsigned = match s.strip_prefix('+') {
        Some(u) if u.starts_with(['+', '-']) => return None,
        Some(u) => u,
        None => s,
    };
    match unsigned {
        ".inf" | ".Inf" | ".INF" => return Some(f64::INFINITY),
        "-.inf" | "-.Inf" | "-.INF" => return Some(f64::NEG_INFINITY),
        ".nan" | ".NaN" | ".NAN" if unsigned.len() == s.len() => return Some(f64::NAN),
        _ => {}
    }
    crate::float::parse(unsigned).filter(|f| f.is_finite())
}

/// The core schema tags; any other tag is refused.
fn apply_tag(tag: Option<&str>, v: Value, raw_plain: Option<String>) -> Result<Value, String> {
    let Some(tag) = tag else { return Ok(v) };
    let name = tag
        .strip_prefix("!!")
        .or_else(|| tag.strip_prefix("tag:yaml.org,2002:"))
        .unwrap_or(tag);
    let text = match &v {
        _ if raw_plain.is_some() => raw_plain,
        Value::String(s) => Some(s.clone()),
        Value::Null => Some(String::new()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    };
    let bad = || format!("the value does not fit its tag `{tag}`");
    match (name, text) {
        ("str", Some(t)) => Ok(Value::String(t)),
        ("int", Some(t)) => integer(&t).ok_or_else(bad),
        ("float", Some(t)) => match integer(&t) {
            Some(Value::Number(n)) => Ok(n
                .as_f64()
                .and_then(Number::from_f64)
                .map_or(Value::Null, Value::Number)),
            _ => float(&t)
                .map(|f| Number::from_f64(f).map_or(Value::Null, Value::Number))
                .ok_or_else(bad),
        },
        ("bool", Some(_)) if v.is_boolean() => Ok(v),
        ("null", Some(_)) if v.is_null() => Ok(v),
        ("map", _) if v.is_object() => Ok(v),
        ("seq", _) if v.is_array() => Ok(v),
        ("str" | "int" | "float" | "bool" | "null" | "map" | "seq", _) => Err(bad()),
        _ => Err(format!("the YAML tag `{tag}` is not supported")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    /// What serde_yaml 0.9 reads: every document, as JSON values.
    fn reference(text: &str) -> Result<Vec<Value>, String> {
        let mut out = Vec::new();
        for doc in serde_yaml::Deserializer::from_str(text) {
            out.push(serde::Deserialize::deserialize(doc).map_err(|e| e.to_string())?);
        }
        Ok(out)
    }

    fn agree(text: &str) {
        let want = reference(text).unwrap_or_else(|e| panic!("serde_yaml refuses {text:?}: {e}"));
        let got = documents(text).unwrap_or_else(|e| panic!("we refuse {text:?}: {e}"));
        assert_eq!(got, want, "{text}");
    }

    #[test]
    fn reads_what_serde_yaml_reads() {
        for text in [
            "a: 1\nb: two\n",
            "apiVersion: v1\nkind: Service\nmetadata:\n  name: web\n  labels:\n    app: web\nspec:\n  ports:\n  - port: 80\n    targetPort: 8080\n    protocol: TCP\n  selector:\n    app: web\n",
            "items:\n  - a\n  -   b\n  - - c\n    - d\n  -\n    e: 1\n",
            "key:\n- x\n- y\nnext: 1\n",
            "- name: a\n  value: 1\n- name: b\n  value:\n    nested: true\n",
            "# leading comment\na: 1 # trailing\n# between\nb: [1, 2, 3] # flow\n",
            "flow: {a: 1, b: [x, y, {c: d}], 'e f': \"g\"}\n",
            "multi: [a,\n  b,\n  c,\n]\nmap: {\n  a: 1,\n  b: 2\n}\n",
            "empty:\nnull1: ~\nnull2: null\nnull3: Null\nt: true\nf: FALSE\nyes: yes\nno: off\n",
            "ints: [0, -1, +2, 0x1F, 0o17, 0b101, 007, -0x10, 12345678901234567890, 18446744073709551615]\n",
            "floats: [1.5, -2.5e3, .5, 5., 1e400, .inf, -.Inf, .NaN, 1_000, 0.1]\n",
            "strings: [abc, 'it''s', \"tab\\tnew\\nline\\u00e9\\x41\\U0001F600\", '', \"\"]\n",
            "plain: this is\n  a long\n\n  folded line\nafter: 1\n",
            "single: 'one\n  two\n\n  three'\ndouble: \"a\\\n   b  \n  c\"\n",
            "lit: |\n  line 1\n    indented\n  line 3\n\nfold: >\n  folded\n  text\n\n  para\n    more\n  back\nkeep: |+\n  kept\n\nstrip: >-\n  stripped\n\n\nlast: x\n",
            "top: |2\n   two extra\n  base\n",
            "- |\n  in a list\n- >-\n  folded\n  in a list\n",
            "anchors:\n  base: &b {x: 1, y: [1, 2]}\n  copy: *b\n  list: &l\n    - a\n  again: *l\n",
            "tags: [!!str 123, !!str 0x10, !!int '42', !!float 1, !!bool true, !!null ~]\n",
            "quoted keys:\n  \"a: b\": 1\n  'c # d': 2\n  url: http://example.com/a#b\n  colon: a:b\n",
            "---\na: 1\n---\nb: 2\n...\n---\n- c\n",
            "%YAML 1.2\n---\nx: 1\n",
            "--- |\n  text document\n",
            "just a scalar\n",
            "dup: 1\ndup: 2\n",
            "nested:\n  deeper:\n    deepest:\n      - [1, [2, [3]]]\n",
            "windows: 1\r\nline: 2\r\n",
            "unicode: héllo wörld ✓\nkey ✓: v\n",
            "annotations:\n  kubectl.kubernetes.io/last-applied-configuration: |\n    {\"apiVersion\":\"v1\",\"kind\":\"Service\"}\n",
            "pair list: [a: 1, b: 2]\nno value: {a, b: 1}\nspaced: [1 2, a b]\n",
            "trailing spaces: value   \nindented: \n  value\n",
            "? \n",
        ]
        .into_iter()
        .filter(|t| !t.starts_with('?'))
        {
            agree(text);
        }
    }

    #[test]
    fn refuses_what_serde_yaml_refuses_with_a_place() {
        for (text, says) in [
            ("a: b: c\n", "mapping cannot start"),
            ("a: 1\n b: 2\n", "mapping key inside a multi-line plain"),
            ("a:\n  - x\n  y: 1\n", "line 3"),
            ("a: 'open\n", "not closed"),
            ("a: \"open\n", "not closed"),
            ("a: [1, 2\n", "not closed"),
            ("a: {x: 1\n", "not closed"),
            ("a: [1, 2] x\n", "line 1"),
            ("a: *missing\n", "unknown anchor"),
            ("a: \"\\q\"\n", "unknown escape"),
            ("a: \"\\u12\"\n", "hex digits"),
            ("a:\n\t- x\n", "tab"),
            ("a: !custom x\n", "not supported"),
            ("a: !!int abc\n", "does not fit"),
            ("- a\nb: 1\n", "unexpected text"),
            ("a: 1\n- b\n", "sequence entry"),
            ("a: @x\n", "cannot start with"),
            ("a: |x\n", "end of the line"),
        ] {
            assert!(reference(text).is_err(), "serde_yaml reads {text:?}");
            let e = documents(text).expect_err(text);
            assert!(e.contains(says) && e.contains("line"), "{text:?}: {e}");
        }
    }

    #[test]
    fn hostile_input_is_refused_not_expanded() {
        let mut laughs = String::from("a: &a [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..12 {
            laughs += &format!(
                "{}: &{} [*{}, *{}, *{}, *{}, *{}, *{}, *{}, *{}, *{}, *{}]\n",
                (b'a' + i) as char,
                (b'a' + i) as char,
                (b'a' + i - 1) as char,
                (b'a' + i - 1) as char,
                (b'a' + i - 1) as char,
                (b'a' + i - 1) as char,
                (b'a' + i - 1) as char,
                (b'a' + i - 1) as char,
                (b'a' + i - 1) as char,
                (b'a' + i - 1) as char,
                (b'a' + i - 1) as char,
                (b'a' + i - 1) as char
            );
        }
        assert!(documents(&laughs).unwrap_err().contains("too many"));
        let deep = "[".repeat(10_000);
        assert!(documents(&deep).unwrap_err().contains("nests too deeply"));
        let deep_block: String = (0..2000)
            .map(|i| format!("{}k:\n", " ".repeat(i)))
            .collect();
        assert!(documents(&deep_block)
            .unwrap_err()
            .contains("nests too deeply"));
        // serde_yaml reads complex keys; Kubernetes objects never have them, and we say so.
        assert!(documents("? complex\n: key\n")
            .unwrap_err()
            .contains("complex mapping keys"));
        assert_eq!(
            one("a: 1\n---\nb: 2\n").unwrap_err(),
            "expected one YAML document, found 2"
        );
        assert_eq!(one("").unwrap(), Value::Null);
        assert_eq!(one("\u{feff}x: 1").unwrap(), json!({"x": 1}));
    }

    #[test]
    fn real_objects_written_as_yaml_read_back() {
        // Every Kubernetes object in the shared oracle (real Services, Pods, Nodes, slices), written
        // in serde_yaml's layout and in ours, reads back as itself and as serde_yaml reads it.
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/oracle");
        let mut files: Vec<_> = std::fs::read_dir(dir.join("reconciler"))
            .map(|d| d.flatten().map(|e| e.path()).collect())
            .unwrap_or_default();
        files.extend([
            dir.join("controller-tests.json"),
            dir.join("proxy-tests.json"),
        ]);
        let mut seen = 0;
        for p in files
            .iter()
            .filter(|p| p.extension().is_some_and(|e| e == "json"))
        {
            let Ok(text) = std::fs::read_to_string(p) else {
                continue;
            };
            let v: Value = serde_json::from_str(&text).unwrap();
            for y in [
                serde_yaml::to_string(&v).unwrap(),
                crate::yaml::to_string(&v),
            ] {
                let want: Value = serde_yaml::from_str(&y).unwrap();
                assert_eq!(
                    one(&y).unwrap_or_else(|e| panic!("{}: {e}", p.display())),
                    want,
                    "{}",
                    p.display()
                );
            }
            seen += 1;
        }
        assert!(
            seen >= 40,
            "only {seen} oracle files found under {}",
            dir.display()
        );
    }

    fn arb_value() -> impl Strategy<Value = Value> {
        let text = prop_oneof![
            "[a-z]{0,8}",
            "[ -~]{0,12}",
            Just("null".to_string()),
            Just("0123".to_string()),
            Just("- x".to_string()),
            Just("a: b".to_string()),
            Just("#x".to_string()),
            Just("line one\nline two\n".to_string()),
            Just("  lead\ntrail  \n\n".to_string()),
            "\\PC{0,6}",
        ];
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(|i| json!(i)),
            (-1e6f64..1e6).prop_map(|f| json!(f)),
            text.prop_map(Value::String),
        ];
        leaf.prop_recursive(4, 40, 6, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
                proptest::collection::btree_map("[a-z][a-z0-9./-]{0,8}", inner, 0..5)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]
        #[test]
        fn reads_back_what_either_writer_writes(v in arb_value()) {
            // serde_yaml's layout (block scalars for multi-line text) and ours (kubectl's).
            for text in [serde_yaml::to_string(&v).unwrap(), crate::yaml::to_string(&v)] {
                let got = one(&text).map_err(|e| TestCaseError::fail(format!("{e}\n{text}")))?;
                let want: Value = serde_yaml::from_str(&text).unwrap();
                prop_assert_eq!(&got, &want, "{}", text);
            }
        }
    }
}

#[cfg(test)]
mod line_break_tests {
    /// YAML 1.1's other line breaks inside quoted scalars read as serde_yaml reads them: NEL folds
    /// like a newline, LS and PS are kept, spaces around any of them are dropped.
    #[test]
    fn nel_ls_and_ps_in_quoted_scalars_read_as_serde_yaml_reads_them() {
        for text in [
            "- 'a\u{2028}    b'\n",
            "- 'a \u{2029}\n  b'\n",
            "- \"a\u{85}   b\"\n",
            "- 'a\n\u{2028}  b'\n",
            "- '\u{2028}    '\n",
            "- \"x \u{2028}\u{2028}y\"\n",
        ] {
            let want: serde_json::Value = serde_yaml::from_str(text).expect("serde_yaml reads it");
            assert_eq!(super::one(text).ok(), Some(want), "{text:?}");
        }
    }
}
