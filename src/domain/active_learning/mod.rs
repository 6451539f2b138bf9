//! Active learning without the model: uncertainty scores, priorities, diverse batches,
//! pseudolabel proposals, the evaluation of a classifier on held-out items, and the group split
//! that keeps one patient's images on one side of it.
//!
//! Everything here works on class probabilities that a model produced elsewhere (`crate::ml`
//! trains the candle model and calls into this module), so every formula is testable with
//! numbers worked out by hand. Classes are indices into the field's option values in guideline
//! order, which is also their ordinal order.
//!
//! - [`uncertainty`]: entropy, margin, least confidence and BALD.
//! - [`selection`]: the [`Strategy`], priorities, the diverse batch and [`Proposal`]s.
//! - [`evaluation`]: accuracy, quadratic kappa, confusion matrix, precision-recall curves,
//!   sensitivity and specificity per ordinal cut-off, and calibration.
//! - [`split`]: the seeded train / held-out split by group.

pub mod evaluation;
pub mod selection;
pub mod split;
pub mod uncertainty;

pub use evaluation::{evaluate, CutoffCurve, Evaluation, EvaluationError, PrCurve, PrPoint, ReliabilityBin, RocPoint};
pub use selection::{diverse_batch, priorities, propose, random_priorities, Proposal, Strategy, StrategyParseError};
pub use split::{split_by_group, GroupSplit, SplitError};
pub use uncertainty::{bald, entropy, least_confidence, margin, mean_probabilities};
