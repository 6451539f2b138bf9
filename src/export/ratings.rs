//! Round-0 ratings gathered while `grades.csv` is written, for the agreement report, and
//! each item's count of current grades, for `reference.csv`.
//!
//! Each current round-0 grade is kept as its item position, its rater slot and one category
//! index per single-choice field: 8 bytes plus 2 per field, so a study's ratings cost far
//! less than its grade rows. The matrices are built one field at a time from them.

use std::collections::HashMap;

use super::context::StudyContext;
use super::stored::StoredAnswers;
use crate::domain::agreement_report::FieldScale;
use crate::domain::ratings::RatingMatrix;

/// Category cell of a field the grade does not answer.
const MISSING: u16 = u16::MAX;

/// The current round-0 ratings of a study.
pub struct RatingCollector {
    scales: Vec<FieldScale>,
    /// The study's item ids, ascending; an item's position here is its index.
    item_ids: Vec<i64>,
    slots: HashMap<i64, u32>,
    /// Account id of each rater slot, in order of first appearance.
    slot_users: Vec<i64>,
    grade_items: Vec<u32>,
    grade_slots: Vec<u32>,
    /// One category index per scale per grade, [`MISSING`] when not answered.
    cells: Vec<u16>,
    /// Current grades (all rounds) of each item, by item position.
    current: Vec<u32>,
}

/// The rating matrix of one field, with the names of its raters.
pub struct FieldRatings<'a> {
    pub scale: &'a FieldScale,
    pub matrix: RatingMatrix,
    pub raters: Vec<String>,
}

impl RatingCollector {
    /// Starts a collector for the single-choice fields of the study's guideline.
    pub fn new(ctx: &StudyContext, item_ids: Vec<i64>) -> RatingCollector {
        let scales = ctx.guideline.fields.iter().filter_map(FieldScale::new).collect();
        RatingCollector {
            scales,
            current: vec![0; item_ids.len()],
            item_ids,
            slots: HashMap::new(),
            slot_users: Vec::new(),
            grade_items: Vec::new(),
            grade_slots: Vec::new(),
            cells: Vec::new(),
        }
    }

    /// Counts one current grade of an item, in any round.
    pub fn count_current(&mut self, item_id: i64) {
        if let Ok(position) = self.item_ids.binary_search(&item_id) {
            self.current[position] += 1;
        }
    }

    /// Returns the item's current grades over all rounds; 0 for an item outside the study.
    pub fn current_grades(&self, item_id: i64) -> u32 {
        self.item_ids
            .binary_search(&item_id)
            .map_or(0, |position| self.current[position])
    }

    /// Records one current round-0 grade; grades of items outside the study are ignored.
    pub fn add(&mut self, item_id: i64, grader_id: i64, answers: &StoredAnswers<'_>) {
        let Ok(position) = self.item_ids.binary_search(&item_id) else {
            return;
        };
        let slot = match self.slots.get(&grader_id) {
            Some(&slot) => slot,
            None => {
                let slot = u32::try_from(self.slot_users.len()).expect("fewer than 2^32 raters");
                self.slots.insert(grader_id, slot);
                self.slot_users.push(grader_id);
                slot
            }
        };
        self.grade_items.push(u32::try_from(position).unwrap_or(u32::MAX));
        self.grade_slots.push(slot);
        for scale in &self.scales {
            let category = answers
                .single(&scale.name)
                .and_then(|value| scale.categories.iter().position(|category| category.label == value))
                .and_then(|index| u16::try_from(index).ok())
                .unwrap_or(MISSING);
            self.cells.push(category);
        }
    }

    /// Returns the single-choice fields, in guideline order.
    pub fn scales(&self) -> &[FieldScale] {
        &self.scales
    }

    /// Builds the items × raters matrix of the `index`-th scale.
    ///
    /// Rows are the items with at least one round-0 grade, in id order. Columns are the
    /// raters with at least one round-0 grade: members in joining order, then non-members
    /// by account id. A field a rater did not answer (its condition was false) is a missing
    /// rating.
    pub fn field_ratings(&self, index: usize, ctx: &StudyContext) -> FieldRatings<'_> {
        let scale = &self.scales[index];
        let member_position: HashMap<i64, usize> = ctx
            .members
            .iter()
            .enumerate()
            .map(|(position, member)| (member.user_id, position))
            .collect();
        let mut slot_order: Vec<usize> = (0..self.slot_users.len()).collect();
        slot_order.sort_by_key(|&slot| {
            let user = self.slot_users[slot];
            (member_position.get(&user).copied().unwrap_or(usize::MAX), user)
        });
        let mut column_of_slot = vec![0usize; self.slot_users.len()];
        for (column, &slot) in slot_order.iter().enumerate() {
            column_of_slot[slot] = column;
        }

        let mut graded = vec![false; self.item_ids.len()];
        for &item in &self.grade_items {
            graded[item as usize] = true;
        }
        // Rows follow item positions, so they stay in item id order.
        let mut row_of_item = vec![u32::MAX; self.item_ids.len()];
        let mut n_rows = 0u32;
        for (position, _) in graded.iter().enumerate().filter(|(_, graded)| **graded) {
            row_of_item[position] = n_rows;
            n_rows += 1;
        }

        let n_scales = self.scales.len();
        let mut rows = vec![vec![None; slot_order.len()]; n_rows as usize];
        for (grade, (&item, &slot)) in self.grade_items.iter().zip(&self.grade_slots).enumerate() {
            let cell = self.cells[grade * n_scales + index];
            let row = row_of_item[item as usize] as usize;
            rows[row][column_of_slot[slot as usize]] = (cell != MISSING).then_some(u32::from(cell));
        }
        let matrix = RatingMatrix::new(scale.categories.clone(), &rows)
            .expect("categories come from a checked guideline and every index was looked up in them");
        let raters = slot_order
            .iter()
            .map(|&slot| ctx.name_of(self.slot_users[slot]).into_owned())
            .collect();
        FieldRatings { scale, matrix, raters }
    }
}
