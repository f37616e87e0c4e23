//! Elapsed time for the timings in `Usage`. `std::time::Instant` panics on
//! wasm32-unknown-unknown (there is no clock without the host), so the browser build asks
//! JavaScript's `Date.now()`.

#[derive(Clone, Copy, Debug)]
pub struct Stopwatch {
    #[cfg(not(all(target_arch = "wasm32", not(target_os = "wasi"))))]
    start: std::time::Instant,
    #[cfg(all(target_arch = "wasm32", not(target_os = "wasi")))]
    start_ms: f64,
}

impl Stopwatch {
    pub fn start() -> Self {
        #[cfg(not(all(target_arch = "wasm32", not(target_os = "wasi"))))]
        return Stopwatch { start: std::time::Instant::now() };
        #[cfg(all(target_arch = "wasm32", not(target_os = "wasi")))]
        return Stopwatch { start_ms: js_sys::Date::now() };
    }

    pub fn elapsed_ms(&self) -> f64 {
        #[cfg(not(all(target_arch = "wasm32", not(target_os = "wasi"))))]
        return self.start.elapsed().as_secs_f64() * 1e3;
        #[cfg(all(target_arch = "wasm32", not(target_os = "wasi")))]
        return js_sys::Date::now() - self.start_ms;
    }
}
