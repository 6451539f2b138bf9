//! The items x raters matrix that agreement statistics and label aggregation read.
//!
//! A [`RatingMatrix`] holds, for each item, at most one rating per rater as an index into
//! an ordered list of declared categories. The order is the guideline's order (the ordinal
//! order for ordinal fields), never an alphabetical one, and a declared category that no
//! rater used still counts: several statistics depend on the number of categories.
//!
//! Each category also carries a numeric value. Interval and ratio metrics and Gwet's
//! weighted coefficients use those values; for a nominal field they are the positions.

use std::fmt;

/// One declared category: the text shown and stored, and its numeric value.
#[derive(Debug, Clone, PartialEq)]
pub struct Category {
    pub label: String,
    pub value: f64,
}

/// Ratings of `n_items` items by `n_raters` raters over declared categories.
///
/// `cells[item * n_raters + rater]` is `Some(category index)` or `None` for a missing rating.
#[derive(Debug, Clone, PartialEq)]
pub struct RatingMatrix {
    categories: Vec<Category>,
    n_items: usize,
    n_raters: usize,
    cells: Vec<Option<u32>>,
}

/// Why a matrix could not be built.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RatingMatrixError {
    #[error("no categories were declared; declare at least one category")]
    NoCategories,
    #[error("category {label:?} is declared twice; each category must be declared once")]
    DuplicateCategory { label: String },
    #[error("row {item} has {found} ratings but the matrix has {expected} raters")]
    RaggedRow { item: usize, found: usize, expected: usize },
    #[error("rating {index} at item {item}, rater {rater} is not a declared category (0..{n_categories})")]
    CategoryOutOfRange { item: usize, rater: usize, index: u32, n_categories: usize },
}

impl RatingMatrix {
    /// Builds a matrix from rows of category indices, one row per item and one column per rater.
    ///
    /// Fails when no category is declared, a label repeats, rows differ in length or an
    /// index does not name a declared category.
    pub fn new(categories: Vec<Category>, rows: &[Vec<Option<u32>>]) -> Result<Self, RatingMatrixError> {
        if categories.is_empty() {
            return Err(RatingMatrixError::NoCategories);
        }
        for (i, category) in categories.iter().enumerate() {
            if categories[..i].iter().any(|other| other.label == category.label) {
                return Err(RatingMatrixError::DuplicateCategory { label: category.label.clone() });
            }
        }

        let n_items = rows.len();
        let n_raters = rows.first().map_or(0, Vec::len);
        let mut cells = Vec::with_capacity(n_items * n_raters);
        for (item, row) in rows.iter().enumerate() {
            if row.len() != n_raters {
                return Err(RatingMatrixError::RaggedRow { item, found: row.len(), expected: n_raters });
            }
            for (rater, cell) in row.iter().enumerate() {
                if let Some(index) = *cell {
                    if index as usize >= categories.len() {
                        return Err(RatingMatrixError::CategoryOutOfRange {
                            item,
                            rater,
                            index,
                            n_categories: categories.len(),
                        });
                    }
                }
                cells.push(*cell);
            }
        }
        Ok(Self { categories, n_items, n_raters, cells })
    }

    /// Declares categories whose values are their positions 0, 1, 2, ...
    pub fn positional_categories<S: Into<String>>(labels: impl IntoIterator<Item = S>) -> Vec<Category> {
        labels
            .into_iter()
            .enumerate()
            .map(|(i, label)| Category { label: label.into(), value: i as f64 })
            .collect()
    }

    pub fn categories(&self) -> &[Category] {
        &self.categories
    }

    pub fn n_categories(&self) -> usize {
        self.categories.len()
    }

    pub fn n_items(&self) -> usize {
        self.n_items
    }

    pub fn n_raters(&self) -> usize {
        self.n_raters
    }

    /// The rating of `item` by `rater` as a category index.
    pub fn get(&self, item: usize, rater: usize) -> Option<usize> {
        self.cells[item * self.n_raters + rater].map(|c| c as usize)
    }

    /// The ratings of one item, one cell per rater.
    pub fn row(&self, item: usize) -> &[Option<u32>] {
        &self.cells[item * self.n_raters..(item + 1) * self.n_raters]
    }

    /// A matrix of the given items, in that order; an item may repeat (bootstrap resampling).
    pub fn select_items(&self, items: &[usize]) -> Self {
        let mut cells = Vec::with_capacity(items.len() * self.n_raters);
        for &item in items {
            cells.extend_from_slice(self.row(item));
        }
        Self { categories: self.categories.clone(), n_items: items.len(), n_raters: self.n_raters, cells }
    }

    /// A matrix of the given raters (columns), in that order.
    pub fn select_raters(&self, raters: &[usize]) -> Self {
        let mut cells = Vec::with_capacity(self.n_items * raters.len());
        for item in 0..self.n_items {
            let row = self.row(item);
            cells.extend(raters.iter().map(|&r| row[r]));
        }
        Self { categories: self.categories.clone(), n_items: self.n_items, n_raters: raters.len(), cells }
    }
}

impl fmt::Display for RatingMatrix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} items x {} raters over {} categories", self.n_items, self.n_raters, self.categories.len())
    }
}
