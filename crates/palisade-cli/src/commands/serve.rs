//! `palisade serve`: resolve the configuration, bind, announce the URL, serve until SIGINT or
//! SIGTERM. The server itself lives in `palisade-server`; this is the process around it.

use std::io::Write;

use palisade_server::{Config, Flags, Server, Sources};

use crate::cli::{GlobalOpts, ServeArgs};
use crate::error::{CliError, CliResult};

pub fn run(global: GlobalOpts, args: ServeArgs) -> CliResult<u8> {
    let flags = Flags {
        data_dir: global.data_dir,
        config: global.config,
        database: global.database,
        sessions: global.sessions,
        listen: args.listen,
        insecure_http: args.insecure_http,
        trusted_proxies: args.trusted_proxies,
        smtp: args.smtp,
    };
    // Configuration errors are reported before logging starts, so they are the one line on
    // standard error that the contract asks for.
    let sources = Sources::from_process(flags).map_err(|e| CliError::usage(e.to_string()))?;
    let config = Config::load(&sources).map_err(|e| CliError::usage(e.to_string()))?;
    palisade_server::init_logging();

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::usage(format!("starting the async runtime: {e}")))?;
    runtime
        .block_on(async move {
            // Signal handlers first: a SIGTERM sent the moment the URL appears must stop the
            // server gracefully, not kill it with the default action.
            let shutdown = palisade_server::shutdown_signal()?;
            let mut server = Server::bind(config)?;
            // Open and migrate the database and start the mailer before announcing, so a
            // broken database or mail set-up is a start-up error rather than a failure after
            // "listening on".
            server.prepare().await?;
            announce(&server.url());
            server.serve(shutdown).await
        })
        .map_err(|e| CliError::usage(e.to_string()))?;
    Ok(0)
}

/// The first line of standard output, flushed at once: scripts and tests wait for it.
fn announce(url: &str) {
    let mut out = std::io::stdout().lock();
    // A closed standard output must not stop the server: the address is also in the log.
    if writeln!(out, "listening on {url}")
        .and_then(|()| out.flush())
        .is_err()
    {
        tracing::warn!(%url, "could not write the listening address to standard output");
    }
}
