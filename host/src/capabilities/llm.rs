//! `fermyon:spin/llm@2.0.0`: Serverless AI. Tessera runs no models, and a component may not
//! name any (`ai_models` is refused at start-up), so every call gets the error Spin gives a
//! component that was not granted the model — a WIT error value, never a trap.

use wasmtime::component::Linker;

use crate::bindings::llm::{self, EmbeddingsResult, Error, InferencingParams, InferencingResult};
use crate::state::HostState;

pub fn add_to_linker(linker: &mut Linker<HostState>) -> anyhow::Result<()> {
    llm::add_to_linker::<_, super::Data>(linker, |s| s)?;
    Ok(())
}

fn not_granted(component: &str, model: &str) -> Error {
    Error::InvalidInput(format!(
        "The component does not have access to use '{model}'. To give the component access, add '{model}' to the 'ai_models' key for the component in your spin.toml manifest (note: `tessera up` runs no models; component `{component}`)"
    ))
}

impl llm::Host for HostState {
    async fn infer(
        &mut self,
        model: String,
        _prompt: String,
        _params: Option<InferencingParams>,
    ) -> wasmtime::Result<Result<InferencingResult, Error>> {
        Ok(Err(not_granted(self.component.spec.id.as_str(), &model)))
    }

    async fn generate_embeddings(
        &mut self,
        model: String,
        _text: Vec<String>,
    ) -> wasmtime::Result<Result<EmbeddingsResult, Error>> {
        Ok(Err(not_granted(self.component.spec.id.as_str(), &model)))
    }
}
