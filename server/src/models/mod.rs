//! Loaded models: the live table the hot path reads, and the manager that fills it.

pub mod check;
pub mod manager;
pub mod routing;
pub mod stats;
pub mod table;

pub use check::BuildCheck;
pub use manager::ModelManager;
pub use routing::Placement;
pub use table::{LoadedModel, ModelEntry, ModelTable, Models, Routed};
