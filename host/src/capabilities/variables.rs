//! `fermyon:spin/variables@2.0.0`: a component reads only the variables declared in its
//! own `[component.x] variables` table, already rendered at startup.

use wasmtime::component::Linker;

use crate::bindings::variables::{self, Error};
use crate::manifest::VariableName;
use crate::state::HostState;

pub fn add_to_linker(linker: &mut Linker<HostState>) -> anyhow::Result<()> {
    variables::add_to_linker::<_, super::Data>(linker, |s| s)?;
    Ok(())
}

impl variables::Host for HostState {
    async fn get(&mut self, name: String) -> wasmtime::Result<Result<String, Error>> {
        // Spin lower-cases names before validating, so `get("JWT_SECRET")` works too.
        let name = name.to_ascii_lowercase();
        if let Err(reason) = VariableName::parse(&name) {
            return Ok(Err(Error::InvalidName(reason)));
        }
        Ok(match self.component.spec.variables.get(&name) {
            Some(value) => Ok(value.clone()),
            None => Err(Error::Undefined(format!(
                "component `{}` has no variable `{name}`",
                self.component.spec.id
            ))),
        })
    }
}
