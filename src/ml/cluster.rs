//! k-means over embeddings (linfa-clustering 0.8, in f64), for diverse batches.

use std::collections::HashSet;

use linfa::traits::{Fit, Predict};
use linfa::DatasetBase;
use linfa_clustering::KMeans;
use ndarray::Array2;
use rand_xoshiro::rand_core::SeedableRng;
use rand_xoshiro::Xoshiro256Plus;

use super::MlError;

/// Independent k-means runs (each from a fresh k-means++ start); the lowest inertia wins.
const RUNS: usize = 3;
const MAX_ITERATIONS: u64 = 100;
const TOLERANCE: f64 = 1e-4;

/// Cluster label per embedding with k = min(`clusters`, number of distinct embeddings).
/// `None` when k < 2, where clusters carry no information. Capping k at the distinct count
/// keeps k-means++ from having to pick a new centre among points that all coincide with one.
pub(crate) fn cluster(embeddings: &[Vec<f32>], clusters: usize, seed: u64) -> Result<Option<Vec<usize>>, MlError> {
    let count = embeddings.len();
    let distinct: HashSet<Vec<u32>> = embeddings.iter().map(|row| row.iter().map(|value| value.to_bits()).collect()).collect();
    let k = clusters.min(distinct.len());
    if k < 2 {
        return Ok(None);
    }
    let width = embeddings[0].len();
    let values: Vec<f64> = embeddings.iter().flatten().map(|&value| f64::from(value)).collect();
    let records = Array2::from_shape_vec((count, width), values).map_err(|error| MlError::Clustering(error.to_string()))?;
    let dataset = DatasetBase::from(records);

    let model = KMeans::params_with_rng(k, Xoshiro256Plus::seed_from_u64(seed))
        .n_runs(RUNS)
        .max_n_iterations(MAX_ITERATIONS)
        .tolerance(TOLERANCE)
        .fit(&dataset)
        .map_err(|error| MlError::Clustering(error.to_string()))?;
    let labels = model.predict(dataset.records());
    Ok(Some(labels.to_vec()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn separates_two_blobs() {
        // Three points near (0, 0) and three near (10, 10).
        let points = vec![
            vec![0.0, 0.1],
            vec![0.2, 0.0],
            vec![0.1, 0.2],
            vec![10.0, 10.1],
            vec![10.2, 9.9],
            vec![9.9, 10.0],
        ];
        let labels = cluster(&points, 2, 7).unwrap().unwrap();
        assert_eq!(labels[0], labels[1]);
        assert_eq!(labels[0], labels[2]);
        assert_eq!(labels[3], labels[4]);
        assert_eq!(labels[3], labels[5]);
        assert_ne!(labels[0], labels[3]);
    }

    #[test]
    fn too_few_points_skip_clustering() {
        assert_eq!(cluster(&[vec![1.0]], 5, 0).unwrap(), None);
        assert_eq!(cluster(&[vec![1.0], vec![2.0]], 1, 0).unwrap(), None);
        // Identical embeddings (a trunk whose units all died) give one distinct point.
        assert_eq!(cluster(&vec![vec![0.0, 0.0]; 5], 3, 0).unwrap(), None);
    }

    #[test]
    fn k_capped_at_distinct_points() {
        // Two distinct points repeated: at most two clusters, each point's copies together.
        let points = vec![vec![0.0], vec![5.0], vec![0.0], vec![5.0], vec![0.0]];
        let labels = cluster(&points, 4, 1).unwrap().unwrap();
        assert_eq!(labels[0], labels[2]);
        assert_eq!(labels[0], labels[4]);
        assert_eq!(labels[1], labels[3]);
        assert_ne!(labels[0], labels[1]);
    }
}
