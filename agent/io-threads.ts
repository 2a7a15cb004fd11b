// Imported first by the processes that run the engine (the CLI, Electron's main process): libuv
// runs file reads and writes on a pool of 4 threads unless told otherwise before its first use, and
// a tracked incremental issues hundreds of small random reads, a backup several pack writes with
// their fsyncs, at once. 16 threads let the disk see that concurrency (a tracked incremental of the
// bench's 1 GiB image: its job took ~0.50 s instead of ~0.60 s). A value set by the user is kept.
process.env.UV_THREADPOOL_SIZE ??= '16';
export {};
