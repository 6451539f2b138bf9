//! Checks every row of a grade file before anything is stored: columns, images, graders,
//! answers, rounds and repeated grades.

use std::collections::HashMap;

use super::table::{Row, Table};
use super::{answers_of, check_columns, ImportError, ImportProblem};
use crate::domain::answers::{validate_answers, Answers};
use crate::domain::guideline::Guideline;
use crate::domain::roles::Role;
use crate::domain::slug::check_username;
use crate::store::models::ProjectRow;
use crate::store::{items, projects, users, DbConnection};

/// Columns a grade file may have besides the guideline's fields.
pub const GRADE_COLUMNS: [&str; 5] = ["image", "grader", "round", "comment", "time_spent_ms"];

/// Columns of an exported `grades.csv` that an import accepts. `superseded` marks a row that
/// the next row of the same image, grader and round corrects. `created_at` and `source` are
/// not read, because imported grades get the import time and source `import`.
pub const EXPORT_COLUMNS: [&str; 3] = ["created_at", "superseded", "source"];

/// Plan that makes a grader named in the file a grader of the study.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GraderPlan {
    /// A grader of the study already.
    Member(i64),
    /// An account that is not a member: it is added as a grader.
    AddMember(i64),
    /// No account has this username: one is created and added as a grader.
    Create,
}

/// A grader named in the file.
#[derive(Debug, Clone)]
pub struct PlannedGrader {
    pub username: String,
    pub plan: GraderPlan,
}

/// A checked row, ready to store.
#[derive(Debug, Clone)]
pub struct PlannedGrade {
    pub line: u64,
    pub item_id: i64,
    pub image: String,
    /// Index into the graders list.
    pub grader: usize,
    /// The round the file names; `None` when it has no round column or the cell is empty.
    pub round: Option<i32>,
    pub answers: Answers,
    pub comment: String,
    pub time_spent_ms: i64,
    /// The earlier line this row corrects (that line is marked superseded).
    pub corrects: Option<u64>,
}

/// The checked file: its graders and its rows in file order.
#[derive(Debug, Clone)]
pub struct GradePlan {
    pub graders: Vec<PlannedGrader>,
    pub grades: Vec<PlannedGrade>,
}

/// Column indices of a grade file.
struct Columns {
    image: usize,
    grader: usize,
    round: Option<usize>,
    comment: Option<usize>,
    time_spent_ms: Option<usize>,
    superseded: Option<usize>,
}

/// Checks a grade file against a study and returns what to store, or every problem found.
pub fn plan_grades(
    conn: &mut DbConnection,
    project: &ProjectRow,
    guideline: &Guideline,
    table: &Table,
    create_graders: bool,
) -> Result<GradePlan, ImportError> {
    let known: Vec<&str> = GRADE_COLUMNS.iter().chain(EXPORT_COLUMNS.iter()).copied().collect();
    let mut problems = check_columns(table, guideline, &known);
    let missing: Vec<&str> = ["image", "grader"]
        .into_iter()
        .filter(|name| table.column(name).is_none())
        .collect();
    for name in &missing {
        problems.push(ImportProblem::at(
            table.header_line,
            None,
            format!(
                "the header has no {name} column; a grade file needs image, grader and one column per guideline field"
            ),
        ));
    }
    if !problems.is_empty() {
        return Err(ImportError::Rejected(problems));
    }
    let columns = Columns {
        image: table.column("image").unwrap_or_default(),
        grader: table.column("grader").unwrap_or_default(),
        round: table.column("round"),
        comment: table.column("comment"),
        time_spent_ms: table.column("time_spent_ms"),
        superseded: table.column("superseded"),
    };

    let mut checker = Checker {
        conn,
        project,
        create_graders,
        images: HashMap::new(),
        grader_index: HashMap::new(),
        graders: Vec::new(),
        problems: Vec::new(),
    };
    let mut grades = Vec::with_capacity(table.rows.len());
    // (item, grader, round) -> (line, marked superseded) of the latest row with that key.
    let mut seen: HashMap<(i64, usize, Option<i32>), (u64, bool)> = HashMap::new();
    for row in &table.rows {
        let Some(grade) = checker.check_row(table, guideline, &columns, row)? else {
            continue;
        };
        let superseded = match columns.superseded {
            Some(index) => match parse_bool(&row.cells[index]) {
                Some(value) => value,
                None => {
                    checker.problem(
                        row.line,
                        "superseded",
                        format!("{:?} is not TRUE or FALSE", row.cells[index].trim()),
                    );
                    continue;
                }
            },
            None => false,
        };
        let key = (grade.item_id, grade.grader, grade.round);
        let mut grade = grade;
        if let Some(&(earlier_line, earlier_superseded)) = seen.get(&key) {
            if !earlier_superseded {
                let round = grade
                    .round
                    .map_or("this file".to_string(), |round| format!("round {round}"));
                checker.problem(
                    row.line,
                    "grader",
                    format!(
                        "{} already grades {} in {round} on line {earlier_line}; keep one of the two rows, or mark line \
                         {earlier_line} superseded (TRUE) to make this row its correction",
                        checker.graders[grade.grader].username, grade.image
                    ),
                );
                continue;
            }
            grade.corrects = Some(earlier_line);
        }
        seen.insert(key, (row.line, superseded));
        grades.push(grade);
    }
    if !checker.problems.is_empty() {
        return Err(ImportError::Rejected(checker.problems));
    }
    Ok(GradePlan {
        graders: checker.graders,
        grades,
    })
}

/// Reads `true`/`false` in any letter case; an empty cell is false.
fn parse_bool(cell: &str) -> Option<bool> {
    let cell = cell.trim();
    if cell.is_empty() || cell.eq_ignore_ascii_case("false") {
        Some(false)
    } else if cell.eq_ignore_ascii_case("true") {
        Some(true)
    } else {
        None
    }
}

/// State of the row checks: lookups cached by name, and the problems found.
struct Checker<'a> {
    conn: &'a mut DbConnection,
    project: &'a ProjectRow,
    create_graders: bool,
    /// Image name -> item id, `None` when the study has no such image.
    images: HashMap<String, Option<i64>>,
    /// Username -> index into `graders`, or why the name cannot be a grader.
    grader_index: HashMap<String, Result<usize, String>>,
    graders: Vec<PlannedGrader>,
    problems: Vec<ImportProblem>,
}

impl Checker<'_> {
    fn problem(&mut self, line: u64, column: &str, message: String) {
        self.problems.push(ImportProblem::at(line, Some(column), message));
    }

    /// Checks one row; `None` when it has a problem (recorded).
    fn check_row(
        &mut self,
        table: &Table,
        guideline: &Guideline,
        columns: &Columns,
        row: &Row,
    ) -> Result<Option<PlannedGrade>, ImportError> {
        let before = self.problems.len();
        let image = row.cells[columns.image].trim().to_string();
        let item_id = self.item_id(&image, row.line)?;
        let username = row.cells[columns.grader].trim().to_string();
        let grader = self.grader(&username, row.line)?;

        let round = match columns
            .round
            .map(|index| row.cells[index].trim())
            .filter(|cell| !cell.is_empty())
        {
            None => None,
            Some(cell) => match cell.parse::<i32>() {
                Ok(round) if round >= 0 => Some(round),
                _ => {
                    self.problem(
                        row.line,
                        "round",
                        format!("{cell:?} is not a round: give 0 for the first grading, 1, 2, ... for later rounds"),
                    );
                    None
                }
            },
        };
        let time_spent_ms = match columns
            .time_spent_ms
            .map(|index| row.cells[index].trim())
            .filter(|cell| !cell.is_empty())
        {
            None => 0,
            Some(cell) => match cell.parse::<i64>() {
                Ok(ms) if ms >= 0 => ms,
                _ => {
                    self.problem(
                        row.line,
                        "time_spent_ms",
                        format!("{cell:?} is not a whole number of milliseconds of 0 or more"),
                    );
                    0
                }
            },
        };
        let comment = columns
            .comment
            .map(|index| row.cells[index].clone())
            .unwrap_or_default();
        let answers = match validate_answers(guideline, &answers_of(table, guideline, row)) {
            Ok(answers) => Some(answers),
            Err(error) => {
                self.problem(row.line, &error.field, error.message);
                None
            }
        };

        let (Some(item_id), Some(grader), Some(answers)) = (item_id, grader, answers) else {
            return Ok(None);
        };
        if self.problems.len() > before {
            return Ok(None);
        }
        Ok(Some(PlannedGrade {
            line: row.line,
            item_id,
            image,
            grader,
            round,
            answers,
            comment,
            time_spent_ms,
            corrects: None,
        }))
    }

    /// Returns the item id of an image of the study, or records a problem when there is none.
    fn item_id(&mut self, image: &str, line: u64) -> Result<Option<i64>, ImportError> {
        if image.is_empty() {
            self.problem(line, "image", "the image name is empty".into());
            return Ok(None);
        }
        let item_id = match self.images.get(image) {
            Some(known) => *known,
            None => {
                let found = items::find_by_name(self.conn, self.project.id, image)?.map(|item| item.id);
                self.images.insert(image.to_string(), found);
                found
            }
        };
        if item_id.is_none() {
            let slug = self.project.slug.clone();
            self.problem(
                line,
                "image",
                format!("study {slug} has no image named {image:?}; import the image first or fix the name"),
            );
        }
        Ok(item_id)
    }

    /// Returns the grader index of a username, or records a problem when it cannot grade the
    /// study.
    fn grader(&mut self, username: &str, line: u64) -> Result<Option<usize>, ImportError> {
        let known = match self.grader_index.get(username) {
            Some(known) => known.clone(),
            None => {
                let known = match self.grader_plan(username)? {
                    Some(plan) => {
                        self.graders.push(PlannedGrader {
                            username: username.to_string(),
                            plan,
                        });
                        Ok(self.graders.len() - 1)
                    }
                    None => Err(self.grader_problem(username)?),
                };
                self.grader_index.insert(username.to_string(), known.clone());
                known
            }
        };
        match known {
            Ok(index) => Ok(Some(index)),
            Err(message) => {
                self.problem(line, "grader", message);
                Ok(None)
            }
        }
    }

    /// Plans how a username becomes a grader of the study; `None` when it cannot.
    fn grader_plan(&mut self, username: &str) -> Result<Option<GraderPlan>, ImportError> {
        match users::find_by_username(self.conn, username)? {
            Some(user) => match projects::role_of(self.conn, self.project.id, user.id)? {
                Some(Role::Grader) => Ok(Some(GraderPlan::Member(user.id))),
                Some(_) => Ok(None),
                None if self.create_graders => Ok(Some(GraderPlan::AddMember(user.id))),
                None => Ok(None),
            },
            None if self.create_graders && check_username(username).is_ok() => Ok(Some(GraderPlan::Create)),
            None => Ok(None),
        }
    }

    /// Explains why a username cannot grade the study, and what to do.
    fn grader_problem(&mut self, username: &str) -> Result<String, ImportError> {
        let slug = &self.project.slug;
        if username.is_empty() {
            return Ok("the grader name is empty".into());
        }
        let Some(user) = users::find_by_username(self.conn, username)? else {
            if let Err(message) = check_username(username) {
                let hint = if username.starts_with("Grader ") {
                    "; grades.csv names graders by pseudonym unless it is exported with --real-names"
                } else {
                    ""
                };
                return Ok(format!("{message}{hint}"));
            }
            return Ok(format!(
                "no user is named {username:?}; create the account with `quorum user add`, or pass --create-graders"
            ));
        };
        Ok(match projects::role_of(self.conn, self.project.id, user.id)? {
            Some(role) => format!("{username} is a {} of study {slug}, not a grader; only graders' grades are imported", role.as_str()),
            None => format!(
                "{username} is not a member of study {slug}; add them with `quorum project add-member --role grader`, or pass --create-graders"
            ),
        })
    }
}
