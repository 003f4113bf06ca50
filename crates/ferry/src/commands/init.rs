//! `ferry init`.

use ferry_workflows::init::{self, InitInput};

use crate::cli::InitArgs;
use crate::output::{Exit, OK, fail, paint};

pub fn run(args: &InitArgs) -> Exit {
    let input = InitInput {
        dir: args.dir.clone(),
        ecs: args.ecs,
        lambda: args.lambda,
        name: args.name.clone(),
        force: args.force,
    };
    match init::init(&input) {
        Ok(written) => {
            for path in written {
                anstream::println!("{} wrote {}", paint(OK, "✓"), path.display());
            }
            anstream::println!("next: edit the account ids, then `ferry validate`");
            Exit::Ok
        }
        Err(e) => fail(&e),
    }
}
