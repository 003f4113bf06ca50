use crate::cli::SchemaArgs;
use crate::output::{self, Exit};

pub fn run(args: &SchemaArgs) -> Exit {
    if args.markdown {
        anstream::print!("{}", ferry_manifest::schema::reference_markdown());
    } else {
        output::json(&ferry_manifest::schema::json_schema());
    }
    Exit::Ok
}
