//! Loaded models: the live table the hot path reads, and the manager that fills it.

pub mod manager;
pub mod table;

pub use manager::ModelManager;
pub use table::{LoadedModel, ModelTable, Models};
