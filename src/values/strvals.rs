//! Helm's `--set` grammar (`helm/pkg/strvals`), ported rule for rule.
//!
//! A flag value is a comma-separated list of `key=value` pairs. Keys nest with `.` and index
//! lists with `[n]`; `\` escapes the next character anywhere; `{a,b}` is a list. How a raw
//! value becomes a JSON value depends on the flag, see [`ValueKind`]. The parser writes into an
//! existing map, exactly like Helm's `ParseInto`, so later flags patch what earlier ones built.

use serde_json::{Map, Value};
use std::fmt;

/// Largest list index Helm accepts (`strvals.MaxIndex`).
const MAX_INDEX: usize = 65536;
/// Deepest key nesting Helm accepts (`strvals.MaxNestedNameLevel`). Unlike Helm, list
/// indices (`a[0][0]`, `a[0].b[0]`) count as levels too: Go's stacks grow, a Rust parser's
/// recursion would overflow.
const MAX_NESTED_NAME_LEVEL: usize = 30;
/// Most list slots (elements, including the nulls that `a[100]=x` pads with) that the `--set`
/// flags of one command may create together: an index may be as large as Helm allows, but a
/// few hundred of them cannot take gigabytes.
pub const MAX_LIST_SLOTS: usize = 2 * (MAX_INDEX + 1);

/// How raw text after `=` becomes a value; one per flag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueKind {
    /// `--set`: `true`/`false` (any case), `null`, and whole numbers without a leading zero are
    /// typed; everything else, `1.5`, `007`, `1e3` and `0x10` included, stays a string.
    Typed,
    /// `--set-string`: always a string.
    String,
    /// `--set-json`: one JSON value per key.
    Json,
    /// `--set-file`: the value is a path, the file's contents become a string.
    File,
}

/// A `--set` parse failure, worded as Helm words it where Helm has a wording.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetError(pub String);

impl fmt::Display for SetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Reads files for `--set-file`; injected so the parser itself stays I/O-free.
pub type FileReader<'a> = dyn Fn(&str) -> Result<String, String> + 'a;

/// What all flags of one command may still create; shared across [`parse_with_budget`] calls.
#[derive(Debug, Clone, Copy)]
pub struct Budget {
    pub list_slots: usize,
}

impl Default for Budget {
    fn default() -> Self {
        Budget {
            list_slots: MAX_LIST_SLOTS,
        }
    }
}

/// Parses one flag value (`a.b=1,c[0]=x`) into `target`.
pub fn parse_into(
    input: &str,
    target: &mut Map<String, Value>,
    kind: ValueKind,
    read_file: &FileReader<'_>,
) -> Result<(), SetError> {
    parse_with_budget(input, target, kind, read_file, &mut Budget::default())
}

/// [`parse_into`], drawing list slots from a budget shared by several flags.
///
/// Messages quote keys from the input (cut to a line), except when the input sets a
/// secret: then a key is named by its position, since text after a mistyped separator may be
/// part of a password (`secrets.postgresPassword=PG,pass`).
pub fn parse_with_budget(
    input: &str,
    target: &mut Map<String, Value>,
    kind: ValueKind,
    read_file: &FileReader<'_>,
    budget: &mut Budget,
) -> Result<(), SetError> {
    let mut parser = Parser {
        chars: input.chars().collect(),
        pos: 0,
        kind,
        read_file,
        echo: !sets_secrets(input),
        budget,
    };
    loop {
        match parser.key(target, 0) {
            Ok(()) => continue,
            Err(Stop::Eof) => return Ok(()),
            Err(Stop::Error(e)) => return Err(e),
        }
    }
}

/// Whether any pair of the input sets a key under `secrets` (the first key of the input, or
/// one after a comma). Messages about such an input quote nothing from it.
pub fn sets_secrets(input: &str) -> bool {
    let lower = input.to_ascii_lowercase();
    lower.starts_with("secrets") || lower.contains(",secrets")
}

/// Internal control flow: Go's parser returns `io.EOF` as an error to end the loop.
enum Stop {
    Eof,
    Error(SetError),
}

impl From<SetError> for Stop {
    fn from(e: SetError) -> Self {
        Stop::Error(e)
    }
}

type Step<T> = Result<T, Stop>;

struct Parser<'a> {
    chars: Vec<char>,
    pos: usize,
    kind: ValueKind,
    read_file: &'a FileReader<'a>,
    /// Whether messages may quote text of the input.
    echo: bool,
    budget: &'a mut Budget,
}

/// Outcome of reading up to a stop character.
struct Run {
    text: String,
    /// The stop character, or `None` at end of input.
    stop: Option<char>,
}

impl Parser<'_> {
    fn next(&mut self) -> Option<char> {
        let c = self.chars.get(self.pos).copied();
        if c.is_some() {
            self.pos += 1;
        }
        c
    }

    fn unread(&mut self) {
        self.pos -= 1;
    }

    /// Go's `runesUntil`: reads until a stop character, resolving `\x` escapes.
    fn until(&mut self, stops: &[char]) -> Run {
        let mut text = String::new();
        loop {
            match self.next() {
                None => return Run { text, stop: None },
                Some(c) if stops.contains(&c) => {
                    return Run {
                        text,
                        stop: Some(c),
                    };
                }
                Some('\\') => match self.next() {
                    None => return Run { text, stop: None },
                    Some(n) => text.push(n),
                },
                Some(c) => text.push(c),
            }
        }
    }

    /// A key as messages show it: quoted and cut to a line, or by position.
    fn shown(&self, key: &str, start: usize) -> String {
        if self.echo {
            crate::diag::excerpt(key)
        } else {
            format!("at character {}", start + 1)
        }
    }

    fn nest(nested: usize) -> Step<usize> {
        let nested = nested + 1;
        if nested > MAX_NESTED_NAME_LEVEL {
            return Err(SetError(format!(
                "value name nested level is greater than maximum supported nested level of {MAX_NESTED_NAME_LEVEL}"
            ))
            .into());
        }
        Ok(nested)
    }

    fn key(&mut self, data: &mut Map<String, Value>, nested: usize) -> Step<()> {
        let start = self.pos;
        let run = self.until(&['=', '[', ',', '.']);
        let key = run.text;
        match run.stop {
            None if key.is_empty() => Err(Stop::Eof),
            None => Err(SetError(format!("key {} has no value", self.shown(&key, start))).into()),
            Some('[') => {
                let index = self.index()?;
                // As in Helm, the list is patched in place and stored even when the rest of
                // the input ends early (`a[0]` leaves `a: []`). Taken, not cloned, so patching
                // a long list pair by pair stays linear.
                let mut list = match data.get_mut(&key).map(std::mem::take) {
                    None => Vec::new(),
                    Some(Value::Array(list)) => list,
                    Some(other) => {
                        set(data, &key, other);
                        return Err(SetError(format!(
                            "key {} is used both as a list and as a value",
                            self.shown(&key, start)
                        ))
                        .into());
                    }
                };
                let result = self.list_item(&mut list, index, Self::nest(nested)?);
                set(data, &key, Value::Array(list));
                result
            }
            Some('=') => {
                if self.kind == ValueKind::Json {
                    if self.empty_value() {
                        set(data, &key, Value::Null);
                        return Ok(());
                    }
                    let value = self.json_value()?;
                    set(data, &key, value);
                    self.empty_value();
                    return Ok(());
                }
                match self.value_list()? {
                    ListOrNot::List(list) => {
                        self.charge(list.len())?;
                        set(data, &key, Value::Array(list));
                        Ok(())
                    }
                    ListOrNot::Eof => {
                        set(data, &key, Value::String(String::new()));
                        Err(Stop::Eof)
                    }
                    ListOrNot::NotList => {
                        let raw = self.until(&[',']).text;
                        let value = self.typed(&raw)?;
                        set(data, &key, value);
                        Ok(())
                    }
                }
            }
            Some(',') => {
                set(data, &key, Value::String(String::new()));
                Err(SetError(format!(
                    "key {} has no value (cannot end with ,)",
                    self.shown(&key, start)
                ))
                .into())
            }
            Some(_) => {
                // '.'
                let nested = Self::nest(nested)?;
                // Taken, not cloned: patching a large map key by key stays linear.
                let existed = data.contains_key(&key);
                let mut inner = match data.get_mut(&key).map(std::mem::take) {
                    None => Map::new(),
                    Some(Value::Object(map)) => map,
                    Some(other) => {
                        if let Some(slot) = data.get_mut(&key) {
                            *slot = other;
                        }
                        return Err(SetError(format!(
                            "key {} is used both as a map and as a value",
                            self.shown(&key, start)
                        ))
                        .into());
                    }
                };
                let result = self.key(&mut inner, nested);
                if result.is_ok() && inner.is_empty() {
                    return Err(SetError(format!(
                        "key map {} has no value",
                        self.shown(&key, start)
                    ))
                    .into());
                }
                if existed || !inner.is_empty() {
                    set(data, &key, Value::Object(inner));
                }
                result
            }
        }
    }

    /// Helm's `keyIndex`: the number inside `[…]`. Its range is checked where Helm checks it:
    /// the sign by `listItem`, the maximum when the list grows.
    fn index(&mut self) -> Step<i64> {
        let start = self.pos;
        let run = self.until(&[']']);
        if run.stop.is_none() {
            return Err(Stop::Eof);
        }
        run.text.parse::<i64>().map_err(|_| {
            SetError(format!(
                "error parsing index: invalid index {}",
                self.shown(&run.text, start)
            ))
            .into()
        })
    }

    /// Helm's `listItem`: patches `list` in place. As in Helm, what a nested map received
    /// before the input ended stays (`a[0].b=x,a[0].c=` keeps `c: ""`).
    fn list_item(&mut self, list: &mut Vec<Value>, index: i64, nested: usize) -> Step<()> {
        if index < 0 {
            return Err(SetError(format!("negative {index} index not allowed")).into());
        }
        let index = usize::try_from(index).unwrap_or(usize::MAX);
        let start = self.pos;
        let run = self.until(&['[', '.', '=']);
        if !run.text.is_empty() {
            return Err(SetError(format!(
                "unexpected data at end of array index: {}",
                self.shown(&run.text, start)
            ))
            .into());
        }
        match run.stop {
            None => Err(Stop::Eof),
            Some('=') => {
                let value = if self.kind == ValueKind::Json {
                    if self.empty_value() {
                        Value::Null
                    } else {
                        let v = self.json_value()?;
                        self.set_index(list, index, v)?;
                        self.empty_value();
                        return Ok(());
                    }
                } else {
                    match self.value_list()? {
                        ListOrNot::List(l) => {
                            self.charge(l.len())?;
                            Value::Array(l)
                        }
                        ListOrNot::Eof => Value::String(String::new()),
                        ListOrNot::NotList => {
                            let raw = self.until(&[',']).text;
                            self.typed(&raw)?
                        }
                    }
                };
                self.set_index(list, index, value)
            }
            Some('[') => {
                let next = self.index()?;
                let taken = index < list.len() && matches!(list[index], Value::Array(_));
                let mut current = match list.get_mut(index).map(std::mem::take) {
                    Some(Value::Array(inner)) => inner,
                    Some(Value::Null) | None => Vec::new(),
                    Some(other) => {
                        list[index] = other;
                        return Err(SetError(format!(
                            "index {index} is used both as a list and as a value"
                        ))
                        .into());
                    }
                };
                match self.list_item(&mut current, next, Self::nest(nested)?) {
                    Ok(()) => self.set_index(list, index, Value::Array(current)),
                    Err(e) => {
                        if taken {
                            list[index] = Value::Array(current);
                        }
                        Err(e)
                    }
                }
            }
            Some(_) => {
                // '.': a map inside a list element; Helm resets a non-map element first.
                let shared = index < list.len();
                let mut inner = match list.get_mut(index).map(std::mem::take) {
                    Some(Value::Object(map)) => map,
                    _ => Map::new(),
                };
                match self.key(&mut inner, Self::nest(nested)?) {
                    Ok(()) => self.set_index(list, index, Value::Object(inner)),
                    Err(e) => {
                        if shared {
                            list[index] = Value::Object(inner);
                        }
                        Err(e)
                    }
                }
            }
        }
    }

    /// Takes `slots` list elements from the budget.
    fn charge(&mut self, slots: usize) -> Result<(), SetError> {
        if slots > self.budget.list_slots {
            return Err(SetError(format!(
                "the --set flags create more than {MAX_LIST_SLOTS} list elements in all (an index pads the list with nulls up to it)"
            )));
        }
        self.budget.list_slots -= slots;
        Ok(())
    }

    /// Grows the list with nulls as needed (`list[3]=x` on an empty list gives
    /// `[null,null,null,x]`), charging the new slots to the budget.
    fn set_index(&mut self, list: &mut Vec<Value>, index: usize, value: Value) -> Step<()> {
        if index > MAX_INDEX {
            return Err(SetError(format!(
                "index of {index} is greater than maximum supported index of {MAX_INDEX}"
            ))
            .into());
        }
        if list.len() <= index {
            self.charge(index + 1 - list.len())?;
            list.resize(index + 1, Value::Null);
        }
        list[index] = value;
        Ok(())
    }

    /// `{a,b}` lists. Helm's `valList`.
    fn value_list(&mut self) -> Step<ListOrNot> {
        match self.next() {
            None => return Ok(ListOrNot::Eof),
            Some('{') => {}
            Some(_) => {
                self.unread();
                return Ok(ListOrNot::NotList);
            }
        }
        let mut list = Vec::new();
        loop {
            let run = self.until(&[',', '}']);
            match run.stop {
                None => return Err(SetError("list must terminate with '}'".into()).into()),
                Some('}') => {
                    if let Some(c) = self.next()
                        && c != ','
                    {
                        self.unread();
                    }
                    list.push(self.typed(&run.text)?);
                    return Ok(ListOrNot::List(list));
                }
                Some(_) => list.push(self.typed(&run.text)?),
            }
        }
    }

    /// Skips blanks; true at end of input or after a comma (Helm's `emptyVal`).
    fn empty_value(&mut self) -> bool {
        loop {
            match self.next() {
                None | Some(',') => return true,
                Some(c) if c.is_whitespace() => continue,
                Some(_) => {
                    self.unread();
                    return false;
                }
            }
        }
    }

    /// Decodes exactly one JSON value from the remaining input.
    fn json_value(&mut self) -> Step<Value> {
        let rest: String = self.chars[self.pos..].iter().collect();
        let mut stream = serde_json::Deserializer::from_str(&rest).into_iter::<Value>();
        match stream.next() {
            Some(Ok(value)) => {
                let consumed = rest[..stream.byte_offset()].chars().count();
                self.pos += consumed;
                Ok(value)
            }
            Some(Err(e)) => Err(SetError(format!("invalid JSON value: {e}")).into()),
            None => Err(SetError("missing JSON value".into()).into()),
        }
    }

    fn typed(&self, raw: &str) -> Result<Value, SetError> {
        Ok(match self.kind {
            ValueKind::String => Value::String(raw.to_owned()),
            ValueKind::File => Value::String((self.read_file)(raw).map_err(SetError)?),
            ValueKind::Json => unreachable!("JSON values are decoded by json_value"),
            ValueKind::Typed => infer(raw),
        })
    }
}

enum ListOrNot {
    List(Vec<Value>),
    NotList,
    Eof,
}

/// Helm's `typedVal` for `--set`.
pub fn infer(raw: &str) -> Value {
    if raw.eq_ignore_ascii_case("true") {
        return Value::Bool(true);
    }
    if raw.eq_ignore_ascii_case("false") {
        return Value::Bool(false);
    }
    if raw.eq_ignore_ascii_case("null") {
        return Value::Null;
    }
    if raw == "0" {
        return Value::from(0i64);
    }
    if !raw.is_empty()
        && !raw.starts_with('0')
        && let Some(n) = parse_go_int(raw)
    {
        return Value::from(n);
    }
    Value::String(raw.to_owned())
}

/// `strconv.ParseInt(s, 10, 64)`: optional sign, ASCII digits only.
fn parse_go_int(s: &str) -> Option<i64> {
    let digits = s.strip_prefix(['+', '-']).unwrap_or(s);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse::<i64>().ok()
}

fn set(data: &mut Map<String, Value>, key: &str, value: Value) {
    if !key.is_empty() {
        data.insert(key.to_owned(), value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(kind: ValueKind, input: &str) -> Result<Value, String> {
        let mut map = Map::new();
        let reader = |p: &str| Ok(format!("<contents of {p}>"));
        parse_into(input, &mut map, kind, &reader).map_err(|e| e.0)?;
        Ok(Value::Object(map))
    }

    fn set(input: &str) -> Value {
        parse(ValueKind::Typed, input).unwrap()
    }

    #[test]
    fn nested_keys_and_types() {
        assert_eq!(set("a.b.c=1"), json!({"a": {"b": {"c": 1}}}));
        assert_eq!(
            set("a=true,b=FALSE,c=null,d=0"),
            json!({"a": true, "b": false, "c": null, "d": 0})
        );
        assert_eq!(set("n=-5,p=+7"), json!({"n": -5, "p": 7}));
    }

    #[test]
    fn only_whole_numbers_without_leading_zero_are_numbers() {
        for s in [
            "1.5",
            "00009",
            "1e3",
            "0x10",
            "1_000",
            "9223372036854775808",
            " 1",
        ] {
            assert_eq!(set(&format!("a={s}")), json!({ "a": s }), "{s}");
        }
    }

    #[test]
    fn escapes() {
        assert_eq!(set(r"a=one\,two"), json!({"a": "one,two"}));
        assert_eq!(
            set(r"nodeSelector.kubernetes\.io/os=linux"),
            json!({"nodeSelector": {"kubernetes.io/os": "linux"}})
        );
        assert_eq!(set(r"a=x\=y"), json!({"a": "x=y"}));
    }

    #[test]
    fn lists() {
        assert_eq!(set("a={x,y,2}"), json!({"a": ["x", "y", 2]}));
        assert_eq!(set("a={}"), json!({"a": [""]}));
        assert_eq!(set("a[0]=x"), json!({"a": ["x"]}));
        assert_eq!(
            set("a[0]=foo,a[3]=bar"),
            json!({"a": ["foo", null, null, "bar"]})
        );
        assert_eq!(set("a[0].b=1,a[0].c=2"), json!({"a": [{"b": 1, "c": 2}]}));
        assert_eq!(set("a[1][0]=x"), json!({"a": [null, ["x"]]}));
        assert_eq!(set("a={x,y},b=1"), json!({"a": ["x", "y"], "b": 1}));
    }

    #[test]
    fn empty_values() {
        assert_eq!(set("a="), json!({"a": ""}));
        assert_eq!(set("a=,b=1"), json!({"a": "", "b": 1}));
    }

    #[test]
    fn errors_match_helm() {
        let e = |s: &str| parse(ValueKind::Typed, s).unwrap_err();
        assert_eq!(e("a"), "key \"a\" has no value");
        assert_eq!(e("a=1,,"), "key \"\" has no value (cannot end with ,)");
        assert_eq!(e("a,b=1"), "key \"a\" has no value (cannot end with ,)");
        assert_eq!(e("a[-1]=x"), "negative -1 index not allowed");
        assert_eq!(
            e("a[65537]=x"),
            "index of 65537 is greater than maximum supported index of 65536"
        );
        assert_eq!(e("a[x]=1"), "error parsing index: invalid index \"x\"");
        assert_eq!(e("a[0]x=1"), "unexpected data at end of array index: \"x\"");
        assert_eq!(e("a={x,y"), "list must terminate with '}'");
        assert_eq!(
            e("a=1,a.b=2"),
            "key \"a\" is used both as a map and as a value"
        );
        let deep = (0..32)
            .map(|i| format!("k{i}"))
            .collect::<Vec<_>>()
            .join(".")
            + "=1";
        assert!(e(&deep).contains("maximum supported nested level of 30"));
    }

    #[test]
    fn string_and_file_kinds() {
        assert_eq!(
            parse(ValueKind::String, "a=1,b=true,c=null").unwrap(),
            json!({"a": "1", "b": "true", "c": "null"})
        );
        assert_eq!(
            parse(ValueKind::File, "a=/tmp/x").unwrap(),
            json!({"a": "<contents of /tmp/x>"})
        );
    }

    #[test]
    fn json_kind() {
        let j = |s: &str| parse(ValueKind::Json, s).unwrap();
        assert_eq!(
            j(r#"a={"b":[1,2]},c="x""#),
            json!({"a": {"b": [1, 2]}, "c": "x"})
        );
        assert_eq!(j("a=,b=1"), json!({"a": null, "b": 1}));
        assert_eq!(j("a[1]=true"), json!({"a": [null, true]}));
        assert!(
            parse(ValueKind::Json, "a={bad")
                .unwrap_err()
                .starts_with("invalid JSON value")
        );
    }

    #[test]
    fn later_pairs_patch_earlier_ones() {
        assert_eq!(set("a.b=1,a.c=2,a.b=3"), json!({"a": {"b": 3, "c": 2}}));
    }
}
