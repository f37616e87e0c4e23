//! Elapsed time for the timings in `Usage`. `std::time::Instant` panics on
//! wasm32-unknown-unknown (there is no clock without the host), so the browser build asks
//! JavaScript's `performance.now()` (sub-millisecond, in windows and workers alike), or
//! `Date.now()` where a host has no `performance`.

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
        return Stopwatch { start_ms: now_ms() };
    }

    pub fn elapsed_ms(&self) -> f64 {
        #[cfg(not(all(target_arch = "wasm32", not(target_os = "wasi"))))]
        return self.start.elapsed().as_secs_f64() * 1e3;
        #[cfg(all(target_arch = "wasm32", not(target_os = "wasi")))]
        return now_ms() - self.start_ms;
    }
}

#[cfg(all(target_arch = "wasm32", not(target_os = "wasi")))]
fn now_ms() -> f64 {
    use wasm_bindgen::JsCast;
    let performance = js_sys::Reflect::get(&js_sys::global(), &"performance".into()).ok();
    let now = performance.as_ref().and_then(|p| js_sys::Reflect::get(p, &"now".into()).ok());
    match (performance, now.and_then(|f| f.dyn_into::<js_sys::Function>().ok())) {
        (Some(p), Some(now)) => now.call0(&p).ok().and_then(|t| t.as_f64()).unwrap_or_else(js_sys::Date::now),
        _ => js_sys::Date::now(),
    }
}
