//! Command-line arguments of every `intercomm` command.

use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};
use intercomm_core::QueueType;
use intercomm_core::telemetry::LogFormat;

/// intercomm: a JSON-RPC 2.0 job system over RabbitMQ.
#[derive(Debug, Parser)]
#[command(name = "intercomm", version, about)]
pub struct Cli {
    /// Log format.
    #[arg(
        long,
        global = true,
        value_enum,
        env = "INTERCOMM_LOG_FORMAT",
        default_value = "text"
    )]
    pub log_format: LogFormatArg,

    /// What to run.
    #[command(subcommand)]
    pub command: Command,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run one worker process (several processes of a worker share its queue).
    Worker(WorkerArgs),
    /// Call a method straight over the broker and print the result.
    Call(CallArgs),
    /// Run the whole system in one process: the gateway and every worker, against the local
    /// RabbitMQ, with a development token printed to try it.
    Up(UpArgs),
    /// Run the REST gateway.
    Gateway(GatewayArgs),
    /// Print a development bearer token (HS256, signed with INTERCOMM_JWT_SECRET).
    Token(TokenArgs),
    /// List or check the job definitions in `schemas/`.
    Routes(RoutesArgs),
    /// Inspect and replay dead-lettered jobs.
    #[command(subcommand)]
    Dlq(DlqCommand),
    /// Measure throughput and latency against the broker.
    #[command(subcommand)]
    Bench(BenchCommand),
}

/// `intercomm dlq …`.
#[derive(Debug, Subcommand)]
pub enum DlqCommand {
    /// List the dead letters of a worker (nothing is removed).
    List {
        /// The worker (`rpc_queue_<worker>.dlq`).
        worker: String,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Re-submit dead letters to their method (all, or those with the given message ids).
    Replay {
        /// The worker (`rpc_queue_<worker>.dlq`).
        worker: String,
        /// Only these message ids (repeatable).
        #[arg(long = "id")]
        ids: Vec<String>,
        /// The replayed jobs' new deadline, from now.
        #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
        timeout: Duration,
    },
}

/// `intercomm gateway`.
#[derive(Debug, Args)]
pub struct GatewayArgs {
    /// Address to listen on (default `INTERCOMM_LISTEN` or 127.0.0.1:8080).
    #[arg(long)]
    pub listen: Option<std::net::SocketAddr>,
    /// The job definitions directory (default `INTERCOMM_SCHEMAS` or `schemas`).
    #[arg(long)]
    pub schemas: Option<std::path::PathBuf>,
}

/// `intercomm up`.
#[derive(Debug, Args)]
pub struct UpArgs {
    /// Address to listen on (default `INTERCOMM_LISTEN` or 127.0.0.1:8080).
    #[arg(long)]
    pub listen: Option<std::net::SocketAddr>,
    /// The job definitions directory (default `INTERCOMM_SCHEMAS` or `schemas`).
    #[arg(long)]
    pub schemas: Option<std::path::PathBuf>,
    /// The user the printed development token speaks for.
    #[arg(long, default_value = "alice")]
    pub user: String,
}

/// `intercomm token`.
#[derive(Debug, Args)]
pub struct TokenArgs {
    /// The subject (user id) the token speaks for.
    #[arg(long)]
    pub sub: String,
    /// How long the token is valid, e.g. `1h`, `15m`.
    #[arg(long, default_value = "1h", value_parser = humantime::parse_duration)]
    pub ttl: Duration,
}

/// `intercomm routes`.
#[derive(Debug, Args)]
pub struct RoutesArgs {
    /// `check`: validate the directory and exit non-zero naming the bad file.
    #[command(subcommand)]
    pub action: Option<RoutesAction>,
    /// The job definitions directory.
    #[arg(long, global = true, default_value = "schemas")]
    pub schemas: std::path::PathBuf,
}

/// `intercomm routes …`.
#[derive(Debug, Subcommand)]
pub enum RoutesAction {
    /// Check every definition offline (what the gateway does at start).
    Check {
        /// The directory (overrides --schemas).
        dir: Option<std::path::PathBuf>,
    },
    /// Ask running gateways to reload `schemas/` (sends SIGHUP to the given process id).
    Reload {
        /// The gateway's process id.
        #[arg(long)]
        pid: u32,
    },
}

/// `intercomm worker`.
#[derive(Debug, Args)]
pub struct WorkerArgs {
    /// The worker's name (see `intercomm worker --list`).
    #[arg(required_unless_present = "list")]
    pub name: Option<String>,
    /// Jobs run at once (the consumer prefetch); default 64 or `INTERCOMM_PREFETCH`.
    #[arg(long)]
    pub concurrency: Option<u16>,
    /// Queue type of `rpc_queue_<name>`; default quorum or `INTERCOMM_QUEUE_TYPE`.
    #[arg(long, value_enum)]
    pub queue_type: Option<QueueTypeArg>,
    /// List the workers this binary has and exit.
    #[arg(long)]
    pub list: bool,
    /// The job definitions directory whose `params` schemas calls are checked against before
    /// a handler runs (default `INTERCOMM_SCHEMAS` or `schemas`; skipped when it does not exist).
    #[arg(long)]
    pub schemas: Option<std::path::PathBuf>,
    /// Serve this process's Prometheus metrics at `http://ADDR/metrics` (default
    /// `INTERCOMM_METRICS_LISTEN`; off when neither is set).
    #[arg(long)]
    pub metrics_listen: Option<std::net::SocketAddr>,
}

/// `intercomm call`.
#[derive(Debug, Args)]
pub struct CallArgs {
    /// The method (= routing key).
    pub method: String,
    /// The params as JSON (an object); `-` reads them from standard input.
    #[arg(default_value = "{}")]
    pub params: String,
    /// How long to wait for the reply, e.g. `5s`, `500ms` (default `INTERCOMM_CALL_TIMEOUT`, 30 s).
    #[arg(long, value_parser = humantime::parse_duration)]
    pub timeout: Option<Duration>,
    /// Act for this user (sent as `x-intercomm-user`, as a gateway would after checking a token).
    #[arg(long)]
    pub user: Option<String>,
}

/// `intercomm bench …`.
#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Raw lapin echo round trip against RpcClient + Worker and the HTTP gateway, same broker,
    /// same run.
    Rpc(BenchRpcArgs),
    /// The gateway's memory over many jobs: fill the job store to its default bound, then run
    /// more jobs and read the gateway's RSS at checkpoints.
    Soak(BenchSoakArgs),
    /// (internal) The raw lapin echo worker of `bench rpc`, in its own process.
    #[command(hide = true)]
    ServeRaw(ServeRawArgs),
    /// (internal) The intercomm echo worker of `bench rpc`, in its own process.
    #[command(hide = true)]
    ServeEcho(ServeEchoArgs),
}

/// `intercomm bench soak`.
#[derive(Debug, Args, Clone)]
pub struct BenchSoakArgs {
    /// Jobs run after the store is full.
    #[arg(long, default_value_t = 100_000)]
    pub jobs: usize,
    /// Jobs run first to fill the store (default: its default bound, 100 000).
    #[arg(long)]
    pub fill: Option<usize>,
    /// Read the memory every this many jobs.
    #[arg(long, default_value_t = 10_000)]
    pub every: usize,
    /// Requests in flight.
    #[arg(long, default_value_t = 64)]
    pub inflight: usize,
    /// Print the figures as JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// `intercomm bench serve-raw`.
#[derive(Debug, Args, Clone)]
pub struct ServeRawArgs {
    /// Names the job queue and routing key (`bench_raw_<suffix>`, `bench.<suffix>.raw`).
    #[arg(long)]
    pub suffix: String,
    /// Queue type of the job queue.
    #[arg(long, value_enum)]
    pub queue_type: QueueTypeArg,
    /// Consumer prefetch.
    #[arg(long)]
    pub prefetch: u16,
}

/// `intercomm bench serve-echo`.
#[derive(Debug, Args, Clone)]
pub struct ServeEchoArgs {
    /// The worker's name.
    #[arg(long)]
    pub worker: String,
    /// The method it serves with the echo handler.
    #[arg(long)]
    pub method: String,
    /// Queue type of `rpc_queue_<worker>`.
    #[arg(long, value_enum)]
    pub queue_type: QueueTypeArg,
    /// Consumer prefetch.
    #[arg(long)]
    pub prefetch: u16,
}

/// `intercomm bench rpc`.
#[derive(Debug, Args, Clone)]
pub struct BenchRpcArgs {
    /// Jobs measured per run at the highest in-flight level (scaled down for lower levels).
    #[arg(long, default_value_t = 20_000)]
    pub jobs: usize,
    /// In-flight levels to measure, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "1,64")]
    pub inflight: Vec<usize>,
    /// Runs of each pair; the median is reported.
    #[arg(long, default_value_t = 3)]
    pub rounds: usize,
    /// Queue type used by both sides (compare like with like).
    #[arg(long, value_enum, default_value = "classic")]
    pub queue_type: QueueTypeArg,
    /// Print the figures as JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Also draw the figures as a self-contained SVG chart at this path.
    #[arg(long, value_name = "PATH")]
    pub svg: Option<std::path::PathBuf>,
    /// Skip the HTTP side (c): the gateway with `POST /v1/jobs` and `POST /v1/rpc`.
    #[arg(long)]
    pub no_http: bool,
    /// Measure only one side (for profiling one of them); the other side runs a token 100 jobs.
    #[arg(long, value_enum)]
    pub only: Option<BenchSide>,
}

/// `--only`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum BenchSide {
    /// (a) the raw lapin baseline.
    Raw,
    /// (b) RpcClient + Worker.
    Intercomm,
    /// (c) the gateway over HTTP.
    Http,
}

/// `--queue-type`.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum QueueTypeArg {
    /// Replicated; counts deliveries.
    Quorum,
    /// Single-node; faster.
    Classic,
}

impl From<QueueTypeArg> for QueueType {
    fn from(value: QueueTypeArg) -> Self {
        match value {
            QueueTypeArg::Quorum => Self::Quorum,
            QueueTypeArg::Classic => Self::Classic,
        }
    }
}

/// `--log-format`.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum LogFormatArg {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

impl From<LogFormatArg> for LogFormat {
    fn from(value: LogFormatArg) -> Self {
        match value {
            LogFormatArg::Text => Self::Text,
            LogFormatArg::Json => Self::Json,
        }
    }
}
