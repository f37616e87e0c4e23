//! Adapter and device set-up, error tracking and the pipeline cache.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use super::GpuError;
use super::kernels::Variant;
use super::kernels::{KernelKey, shader_source};

/// How to pick and set up the GPU. No environment variables: everything is passed here.
#[derive(Clone, Debug)]
pub struct GpuOptions {
    pub power_preference: wgpu::PowerPreference,
    /// Use a software adapter even when a hardware one exists.
    pub force_fallback_adapter: bool,
    /// Request `SHADER_F16` when the adapter has it.
    pub allow_f16: bool,
    /// Request `SUBGROUP` when the adapter has it.
    pub allow_subgroups: bool,
    /// Caps the bytes of one weight buffer below the adapter's binding limit (tests lower it to
    /// force tensors to be split by rows). `None`: the adapter's limit.
    pub max_binding_bytes: Option<u64>,
    /// The matvec kernel variant; `None`: [`Variant::for_adapter`].
    pub matvec_variant: Option<Variant>,
    /// Request WebGPU's default limits instead of the adapter's (what a phone or SwiftShader
    /// grants): tests use it to prove the kernels need no more.
    pub webgpu_default_limits: bool,
}

impl Default for GpuOptions {
    fn default() -> Self {
        GpuOptions {
            power_preference: wgpu::PowerPreference::HighPerformance,
            force_fallback_adapter: false,
            allow_f16: true,
            allow_subgroups: true,
            max_binding_bytes: None,
            matvec_variant: None,
            webgpu_default_limits: false,
        }
    }
}

/// argmax.wgsl's workgroup, the largest of any kernel (WebGPU's default limit).
const ARGMAX_WORKGROUP_SIZE: usize = 256;

/// Limits below which no kernel of this crate can run (WebGPU's defaults are all above them).
fn check_limits(l: &wgpu::Limits) -> Result<(), GpuError> {
    let need: [(&'static str, u64, u64); 5] = [
        ("maxStorageBuffersPerShaderStage", l.max_storage_buffers_per_shader_stage as u64, 8),
        (
            "maxComputeInvocationsPerWorkgroup",
            l.max_compute_invocations_per_workgroup as u64,
            ARGMAX_WORKGROUP_SIZE as u64,
        ),
        ("maxComputeWorkgroupSizeX", l.max_compute_workgroup_size_x as u64, ARGMAX_WORKGROUP_SIZE as u64),
        (
            "maxComputeWorkgroupStorageSize",
            l.max_compute_workgroup_storage_size as u64,
            (8 * ARGMAX_WORKGROUP_SIZE) as u64, // argmax: (value, index) per invocation
        ),
        ("maxComputeWorkgroupsPerDimension", l.max_compute_workgroups_per_dimension as u64, 1024),
    ];
    for (name, got, need) in need {
        if got < need {
            return Err(GpuError::MissingLimit { name, got, need });
        }
    }
    Ok(())
}

/// The adapter, the device, and everything shared by the kernels.
pub struct GpuContext {
    pub(crate) device: wgpu::Device,
    pub(crate) queue: wgpu::Queue,
    adapter: wgpu::Adapter,
    info: wgpu::AdapterInfo,
    limits: wgpu::Limits,
    /// Largest byte size of one weight buffer: the binding and buffer limits (and the option),
    /// rounded down to 4 and kept below 4 GiB so shader byte offsets fit in a u32.
    binding_limit: u64,
    matvec_variant: Variant,
    pipelines: Mutex<HashMap<KernelKey, wgpu::ComputePipeline>>,
    /// Set by the device-lost callback.
    lost: Arc<Mutex<Option<String>>>,
    /// The first error wgpu reported outside an error scope since the last [`GpuContext::check`].
    uncaptured: Arc<Mutex<Option<GpuError>>>,
}

impl GpuContext {
    /// Finds an adapter and requests a device with the adapter's own limits (not WebGPU's
    /// defaults) and the optional features the options allow and the adapter has.
    pub async fn new(opts: &GpuOptions) -> Result<Self, GpuError> {
        // In a browser without WebGPU (no `navigator.gpu`, or one that finds no adapter) wgpu's
        // web backend is not to be touched: ask first.
        #[cfg(target_arch = "wasm32")]
        if !wgpu::util::is_browser_webgpu_supported().await {
            return Err(GpuError::NoAdapter("navigator.gpu is missing or offers no adapter".into()));
        }
        let instance = wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle());
        let adapter = instance
            .request_adapter(&wgpu::RequestAdapterOptions {
                power_preference: opts.power_preference,
                force_fallback_adapter: opts.force_fallback_adapter,
                compatible_surface: None,
                ..Default::default()
            })
            .await
            .map_err(|e| GpuError::NoAdapter(e.to_string()))?;
        let info = adapter.get_info();
        let limits = if opts.webgpu_default_limits { wgpu::Limits::default() } else { adapter.limits() };
        check_limits(&limits)?;
        let mut features = wgpu::Features::empty();
        if opts.allow_f16 && adapter.features().contains(wgpu::Features::SHADER_F16) {
            features |= wgpu::Features::SHADER_F16;
        }
        if opts.allow_subgroups && adapter.features().contains(wgpu::Features::SUBGROUP) {
            features |= wgpu::Features::SUBGROUP;
        }
        let (device, queue) = adapter
            .request_device(&wgpu::DeviceDescriptor {
                label: Some("pocketllm"),
                required_features: features,
                required_limits: limits.clone(),
                ..Default::default()
            })
            .await
            .map_err(|e| GpuError::RequestDevice(e.to_string()))?;

        let lost = Arc::new(Mutex::new(None));
        let lost_cb = lost.clone();
        device.set_device_lost_callback(move |reason, message| {
            *lost_cb.lock().unwrap_or_else(|e| e.into_inner()) = Some(format!("{reason:?}: {message}"));
        });
        let uncaptured: Arc<Mutex<Option<GpuError>>> = Arc::new(Mutex::new(None));
        let slot = uncaptured.clone();
        device.on_uncaptured_error(Arc::new(move |e: wgpu::Error| {
            let err = match &e {
                wgpu::Error::OutOfMemory { .. } => GpuError::OutOfMemory(e.to_string()),
                _ => GpuError::Kernel { label: "uncaptured".into(), message: e.to_string() },
            };
            let mut s = slot.lock().unwrap_or_else(|e| e.into_inner());
            s.get_or_insert(err);
        }));

        let mut binding_limit = limits.max_storage_buffer_binding_size.min(limits.max_buffer_size);
        if let Some(cap) = opts.max_binding_bytes {
            binding_limit = binding_limit.min(cap);
        }
        let binding_limit = binding_limit.min(u32::MAX as u64) & !3;
        let matvec_variant = opts.matvec_variant.unwrap_or_else(|| Variant::for_adapter(&info, features));
        if !matvec_variant.runs_on(&info, features) {
            return Err(GpuError::RequestDevice(format!(
                "the {matvec_variant:?} kernels need the subgroups feature (largest subgroup at most 64)"
            )));
        }
        Ok(GpuContext {
            device,
            queue,
            adapter,
            info,
            limits,
            binding_limit,
            matvec_variant,
            pipelines: Mutex::new(HashMap::new()),
            lost,
            uncaptured,
        })
    }

    /// [`GpuContext::new`] driven to completion on this thread (native only).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn new_blocking(opts: &GpuOptions) -> Result<Self, GpuError> {
        pollster::block_on(Self::new(opts))
    }

    pub fn adapter_info(&self) -> &wgpu::AdapterInfo {
        &self.info
    }

    /// The limits the device was created with (the adapter's own).
    pub fn limits(&self) -> &wgpu::Limits {
        &self.limits
    }

    pub fn features(&self) -> wgpu::Features {
        self.device.features()
    }

    pub fn adapter_features(&self) -> wgpu::Features {
        self.adapter.features()
    }

    /// Largest byte size of one weight buffer; bigger tensors are split by rows.
    pub fn binding_limit(&self) -> u64 {
        self.binding_limit
    }

    /// The matvec variant this context compiles.
    pub fn matvec_variant(&self) -> Variant {
        self.matvec_variant
    }

    pub fn device(&self) -> &wgpu::Device {
        &self.device
    }

    pub fn queue(&self) -> &wgpu::Queue {
        &self.queue
    }

    /// Reports device loss, or the first error wgpu raised since the last call (an
    /// out-of-memory at upload, a validation error in a kernel), and clears the latter.
    pub fn check(&self) -> Result<(), GpuError> {
        if let Some(m) = self.lost.lock().unwrap_or_else(|e| e.into_inner()).clone() {
            return Err(GpuError::DeviceLost(m));
        }
        match self.uncaptured.lock().unwrap_or_else(|e| e.into_inner()).take() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// The compute pipeline of `key`, compiled on first use and cached. Natively a shader or
    /// pipeline validation error is returned here; in the browser it arrives later, through
    /// [`GpuContext::check`].
    pub fn pipeline(&self, key: KernelKey) -> Result<wgpu::ComputePipeline, GpuError> {
        if let Some(p) = self.pipelines.lock().unwrap_or_else(|e| e.into_inner()).get(&key) {
            return Ok(p.clone());
        }
        self.check()?;
        let label = key.label();
        let source = shader_source(key)?;
        let module = self.device.create_shader_module(wgpu::ShaderModuleDescriptor {
            label: Some(&label),
            source: wgpu::ShaderSource::Wgsl(source.into()),
        });
        let pipeline = self.device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
            label: Some(&label),
            layout: None,
            module: &module,
            entry_point: Some("main"),
            compilation_options: Default::default(),
            cache: None,
        });
        self.check().map_err(|e| match e {
            GpuError::Kernel { message, .. } => GpuError::Kernel { label: label.clone(), message },
            e => e,
        })?;
        self.pipelines.lock().unwrap_or_else(|e| e.into_inner()).insert(key, pipeline.clone());
        Ok(pipeline)
    }

    /// Submits recorded work.
    pub fn submit(&self, encoder: wgpu::CommandEncoder) {
        self.queue.submit([encoder.finish()]);
    }

    /// Waits for submitted work to finish (native only; the browser has no blocking wait).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn wait(&self) -> Result<(), GpuError> {
        self.device.poll(wgpu::PollType::wait_indefinitely()).map_err(|e| GpuError::DeviceLost(e.to_string()))?;
        self.check()
    }
}
