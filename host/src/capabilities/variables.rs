//! Variables: `fermyon:spin/variables@2.0.0` and `wasi:config/store@0.2.0-draft-2024-09-27`.
//! A component reads only the variables declared in its own `[component.x] variables`
//! table, already rendered at startup; both interfaces see the same values.

use wasmtime::component::Linker;

use crate::bindings::variables::{self, Error};
use crate::bindings::wasi_config;
use crate::manifest::VariableName;
use crate::state::HostState;

pub fn add_to_linker(linker: &mut Linker<HostState>) -> anyhow::Result<()> {
    variables::add_to_linker::<_, super::Data>(linker, |s| s)?;
    wasi_config::add_to_linker::<_, super::Data>(linker, |s| s)?;
    Ok(())
}

impl HostState {
    fn variable(&self, name: &str) -> Result<String, Error> {
        // Spin lower-cases names before validating, so `get("JWT_SECRET")` works too.
        let name = name.to_ascii_lowercase();
        if let Err(reason) = VariableName::parse(&name) {
            return Err(Error::InvalidName(reason));
        }
        match self.component.spec.variables.get(&name) {
            Some(value) => Ok(value.clone()),
            None => Err(Error::Undefined(format!(
                "component `{}` has no variable `{name}`",
                self.component.spec.id
            ))),
        }
    }
}

impl variables::Host for HostState {
    async fn get(&mut self, name: String) -> wasmtime::Result<Result<String, Error>> {
        Ok(self.variable(&name))
    }
}

impl wasi_config::Host for HostState {
    /// As in Spin, an undefined or invalid name is "no value", not an error
    /// (the wasi-runtime-config guidance).
    async fn get(
        &mut self,
        key: String,
    ) -> wasmtime::Result<Result<Option<String>, wasi_config::Error>> {
        Ok(Ok(self.variable(&key).ok()))
    }

    async fn get_all(
        &mut self,
    ) -> wasmtime::Result<Result<Vec<(String, String)>, wasi_config::Error>> {
        let mut all: Vec<(String, String)> = self
            .component
            .spec
            .variables
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        all.sort();
        Ok(Ok(all))
    }
}
