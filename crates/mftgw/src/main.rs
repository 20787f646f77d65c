//! `mftgw`: the FTPS gateway binary; see [`mftgw::cli`].

fn main() -> anyhow::Result<()> {
    mftgw::cli::main()
}
