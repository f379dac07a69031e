//! Loaded models: the live table the hot path reads, and the manager that fills it.

pub mod manager;
pub mod routing;
pub mod table;

pub use manager::ModelManager;
pub use routing::{Placement, Routed};
pub use table::{LoadedModel, ModelTable, Models};
