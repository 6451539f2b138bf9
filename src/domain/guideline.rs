//! Grading guidelines: the written criteria and the form graders fill in.
//!
//! A guideline is a TOML document with a key, a version, a title, a Markdown body and a list
//! of fields. Each field has a kind (ordinal, nominal, boolean, multi-choice or free text), the
//! options a grader chooses from (each with a label, a definition in the guideline's words
//! and optional reference images), and an optional condition: the field is asked only when
//! another field has one of the listed answers (DR severity only when the image is gradable).
//!
//! [`parse_guideline`] checks a document completely and reports every problem with the line
//! it is on, so `quorum guideline check` can list them all at once. A parsed [`Guideline`] is
//! the only way to get one, so code that holds one may rely on its invariants: unique field
//! names, unique option values per field, conditions that refer to an earlier field and to
//! answers that field can take.

use serde::{Deserialize, Serialize};
use toml::Spanned;

/// The kinds of question a guideline field can ask.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FieldKind {
    /// One option from an ordered scale (DR severity 0 to 4).
    Ordinal,
    /// One option from an unordered list.
    Nominal,
    /// Yes or no; the options are `yes` and `no`.
    Boolean,
    /// Any number of options from a list.
    MultiChoice,
    /// Free text, no options.
    Text,
}

impl FieldKind {
    pub fn as_str(self) -> &'static str {
        match self {
            FieldKind::Ordinal => "ordinal",
            FieldKind::Nominal => "nominal",
            FieldKind::Boolean => "boolean",
            FieldKind::MultiChoice => "multi-choice",
            FieldKind::Text => "text",
        }
    }

    /// True for kinds whose answer is exactly one option, the kinds agreement statistics read.
    pub fn is_single_choice(self) -> bool {
        matches!(self, FieldKind::Ordinal | FieldKind::Nominal | FieldKind::Boolean)
    }
}

/// One answer a grader can choose.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FieldOption {
    pub value: String,
    pub label: String,
    #[serde(default)]
    pub definition: String,
    /// Paths of reference images, relative to the guideline's folder.
    #[serde(default)]
    pub reference_images: Vec<String>,
}

/// "Ask this field only when `field` has one of the answers in `any_of`."
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Condition {
    pub field: String,
    #[serde(rename = "in")]
    pub any_of: Vec<String>,
}

/// One question of the grading form.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Field {
    pub name: String,
    pub label: String,
    pub kind: FieldKind,
    pub required: bool,
    #[serde(default)]
    pub help: String,
    #[serde(default)]
    pub options: Vec<FieldOption>,
    pub condition: Option<Condition>,
}

impl Field {
    pub fn option(&self, value: &str) -> Option<&FieldOption> {
        self.options.iter().find(|option| option.value == value)
    }

    /// The option values in declared order.
    pub fn option_values(&self) -> Vec<&str> {
        self.options.iter().map(|option| option.value.as_str()).collect()
    }
}

/// A checked grading guideline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Guideline {
    pub key: String,
    pub version: String,
    pub title: String,
    pub body: String,
    pub fields: Vec<Field>,
}

impl Guideline {
    pub fn field(&self, name: &str) -> Option<&Field> {
        self.fields.iter().find(|field| field.name == name)
    }
}

/// One problem in a guideline document, with its 1-based line (0 when the problem has no
/// single place, such as a missing top-level key reported by the TOML parser without a span).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GuidelineProblem {
    pub line: usize,
    pub message: String,
}

impl std::fmt::Display for GuidelineProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.line == 0 {
            write!(f, "{}", self.message)
        } else {
            write!(f, "line {}: {}", self.line, self.message)
        }
    }
}

// The document as written, with spans kept for error lines.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGuideline {
    key: Spanned<String>,
    version: Spanned<String>,
    title: Spanned<String>,
    #[serde(default)]
    body: String,
    #[serde(default)]
    fields: Vec<Spanned<RawField>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawField {
    name: Spanned<String>,
    #[serde(default)]
    label: Option<String>,
    kind: Spanned<String>,
    #[serde(default = "default_required")]
    required: bool,
    #[serde(default)]
    help: String,
    #[serde(default)]
    options: Vec<Spanned<RawOption>>,
    #[serde(default)]
    condition: Option<Spanned<RawCondition>>,
}

fn default_required() -> bool {
    true
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawOption {
    value: Spanned<String>,
    label: String,
    #[serde(default)]
    definition: String,
    #[serde(default)]
    reference_images: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCondition {
    field: String,
    #[serde(rename = "in")]
    any_of: Vec<String>,
}

/// Converts byte offsets to 1-based line numbers.
struct LineIndex {
    line_starts: Vec<usize>,
}

impl LineIndex {
    fn new(text: &str) -> Self {
        let mut line_starts = vec![0];
        line_starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        Self { line_starts }
    }

    fn line(&self, offset: usize) -> usize {
        match self.line_starts.binary_search(&offset) {
            Ok(i) => i + 1,
            Err(i) => i,
        }
    }
}

/// Names allowed for fields and option values: they appear in CSV headers and JSON keys.
fn is_valid_identifier(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.')
}

/// Parses and checks a guideline document, returning every problem found.
pub fn parse_guideline(text: &str) -> Result<Guideline, Vec<GuidelineProblem>> {
    let lines = LineIndex::new(text);
    let raw: RawGuideline = match toml::from_str(text) {
        Ok(raw) => raw,
        Err(error) => {
            let line = error.span().map_or(0, |span| lines.line(span.start));
            return Err(vec![GuidelineProblem { line, message: error.message().trim().to_string() }]);
        }
    };

    let mut problems = Vec::new();
    let mut problem = |offset: usize, message: String| {
        problems.push(GuidelineProblem { line: lines.line(offset), message });
    };

    if !is_valid_identifier(raw.key.get_ref()) {
        problem(raw.key.span().start, format!(
            "key {:?} is invalid: use 1 to 64 letters, digits, '_', '-' or '.'", raw.key.get_ref()
        ));
    }
    if raw.version.get_ref().trim().is_empty() {
        problem(raw.version.span().start, "version is empty: give a version such as \"1.0\"".into());
    }
    if raw.title.get_ref().trim().is_empty() {
        problem(raw.title.span().start, "title is empty".into());
    }
    if raw.fields.is_empty() {
        problem(0, "the guideline has no fields: add at least one [[fields]] table".into());
    }

    let mut fields: Vec<Field> = Vec::new();
    for spanned in &raw.fields {
        let raw_field = spanned.get_ref();
        let name = raw_field.name.get_ref().clone();
        let name_at = raw_field.name.span().start;

        if !is_valid_identifier(&name) {
            problem(name_at, format!(
                "field name {name:?} is invalid: use 1 to 64 letters, digits, '_', '-' or '.'"
            ));
        }
        if fields.iter().any(|f| f.name == name) {
            problem(name_at, format!("field {name:?} is declared twice: field names must be unique"));
        }

        let kind = match raw_field.kind.get_ref().as_str() {
            "ordinal" => FieldKind::Ordinal,
            "nominal" => FieldKind::Nominal,
            "boolean" => FieldKind::Boolean,
            "multi-choice" => FieldKind::MultiChoice,
            "text" => FieldKind::Text,
            other => {
                problem(raw_field.kind.span().start, format!(
                    "field {name:?} has kind {other:?}: use one of ordinal, nominal, boolean, multi-choice, text"
                ));
                continue;
            }
        };

        let mut options: Vec<FieldOption> = Vec::new();
        for raw_option in &raw_field.options {
            let option = raw_option.get_ref();
            let value = option.value.get_ref();
            let value_at = option.value.span().start;
            if !is_valid_identifier(value) {
                problem(value_at, format!(
                    "option value {value:?} of field {name:?} is invalid: use 1 to 64 letters, digits, '_', '-' or '.'"
                ));
            }
            if options.iter().any(|o| &o.value == value) {
                problem(value_at, format!("field {name:?} declares option {value:?} twice"));
            }
            if option.label.trim().is_empty() {
                problem(value_at, format!("option {value:?} of field {name:?} has an empty label"));
            }
            options.push(FieldOption {
                value: value.clone(),
                label: option.label.clone(),
                definition: option.definition.clone(),
                reference_images: option.reference_images.clone(),
            });
        }

        match kind {
            FieldKind::Text if !options.is_empty() => problem(name_at, format!(
                "field {name:?} is free text and cannot have options: remove them or change its kind"
            )),
            FieldKind::Boolean if options.is_empty() => {
                options = vec![
                    FieldOption { value: "yes".into(), label: "Yes".into(), definition: String::new(), reference_images: vec![] },
                    FieldOption { value: "no".into(), label: "No".into(), definition: String::new(), reference_images: vec![] },
                ];
            }
            FieldKind::Boolean => {
                let mut values = options.iter().map(|o| o.value.as_str()).collect::<Vec<_>>();
                values.sort_unstable();
                if values != ["no", "yes"] {
                    problem(name_at, format!(
                        "boolean field {name:?} must have exactly the options \"yes\" and \"no\" (or none, for the defaults)"
                    ));
                }
            }
            FieldKind::Ordinal | FieldKind::Nominal | FieldKind::MultiChoice if options.len() < 2 => {
                problem(name_at, format!(
                    "field {name:?} of kind {} needs at least two options", kind.as_str()
                ));
            }
            _ => {}
        }

        let condition = raw_field.condition.as_ref().map(|spanned_condition| {
            let condition = spanned_condition.get_ref();
            let at = spanned_condition.span().start;
            match fields.iter().find(|f| f.name == condition.field) {
                None => problem(at, format!(
                    "field {name:?} has a condition on {:?}, which is not a field declared before it",
                    condition.field
                )),
                Some(target) if !target.kind.is_single_choice() && target.kind != FieldKind::MultiChoice => {
                    problem(at, format!(
                        "field {name:?} has a condition on free-text field {:?}: conditions need a field with options",
                        condition.field
                    ))
                }
                Some(target) => {
                    if condition.any_of.is_empty() {
                        problem(at, format!("the condition of field {name:?} lists no answers in `in`"));
                    }
                    for value in &condition.any_of {
                        if target.option(value).is_none() {
                            problem(at, format!(
                                "the condition of field {name:?} names answer {value:?}, which field {:?} does not have (allowed: {})",
                                condition.field,
                                target.option_values().join(", ")
                            ));
                        }
                    }
                }
            }
            Condition { field: condition.field.clone(), any_of: condition.any_of.clone() }
        });

        fields.push(Field {
            label: raw_field.label.clone().unwrap_or_else(|| name.clone()),
            name,
            kind,
            required: raw_field.required,
            help: raw_field.help.clone(),
            options,
            condition,
        });
    }

    if !problems.is_empty() {
        return Err(problems);
    }
    Ok(Guideline {
        key: raw.key.into_inner(),
        version: raw.version.into_inner(),
        title: raw.title.into_inner(),
        body: raw.body,
        fields,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"
key = "demo"
version = "1"
title = "Demo"

[[fields]]
name = "gradable"
kind = "nominal"
[[fields.options]]
value = "gradable"
label = "Gradable"
[[fields.options]]
value = "ungradable"
label = "Ungradable"

[[fields]]
name = "dr"
kind = "ordinal"
condition = { field = "gradable", in = ["gradable"] }
[[fields.options]]
value = "0"
label = "None"
[[fields.options]]
value = "1"
label = "Mild"
"#;

    #[test]
    fn minimal_guideline_parses() {
        let guideline = parse_guideline(MINIMAL).expect("valid guideline");
        assert_eq!(guideline.fields.len(), 2);
        assert_eq!(guideline.fields[1].condition.as_ref().map(|c| c.field.as_str()), Some("gradable"));
    }

    #[test]
    fn unknown_condition_answer_reports_line() {
        let text = MINIMAL.replace(r#"in = ["gradable"]"#, r#"in = ["maybe"]"#);
        let problems = parse_guideline(&text).unwrap_err();
        assert_eq!(problems.len(), 1);
        assert_eq!(problems[0].line, 19);
        assert!(problems[0].message.contains("\"maybe\""), "{}", problems[0].message);
    }

    #[test]
    fn every_problem_is_reported() {
        let text = MINIMAL
            .replace(r#"kind = "ordinal""#, r#"kind = "scale""#)
            .replace(r#"value = "ungradable""#, r#"value = "gradable""#);
        let problems = parse_guideline(&text).unwrap_err();
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(problems.iter().any(|p| p.message.contains("twice") && p.line == 13));
        assert!(problems.iter().any(|p| p.message.contains("\"scale\"") && p.line == 18));
    }

    #[test]
    fn toml_syntax_error_reports_line() {
        let problems = parse_guideline("key = \"a\"\nversion = \n").unwrap_err();
        assert_eq!(problems[0].line, 2);
    }

    #[test]
    fn boolean_field_gets_yes_and_no() {
        let text = MINIMAL.to_string() + "\n[[fields]]\nname = \"ma\"\nkind = \"boolean\"\n";
        let guideline = parse_guideline(&text).expect("valid");
        assert_eq!(guideline.field("ma").map(|f| f.option_values()), Some(vec!["yes", "no"]));
    }

    #[test]
    fn condition_on_later_field_is_rejected() {
        let text = MINIMAL.replace(r#"field = "gradable""#, r#"field = "dr""#);
        let problems = parse_guideline(&text).unwrap_err();
        assert!(problems[0].message.contains("not a field declared before it"));
    }
}
