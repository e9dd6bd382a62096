module {{name}}

go 1.24

// The Cortex Go SDK. It is not downloaded: build.sh puts the SDK folder ($CORTEX_SDK_DIR/go)
// and this folder into a temporary Go workspace (go.work), which resolves this requirement.
require cortexruntime.dev/cortex v0.0.0
