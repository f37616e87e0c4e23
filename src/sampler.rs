//! Token sampling (placeholder until the sampler lands).
