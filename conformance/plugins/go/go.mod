module conformance-go

go 1.24

require cortexruntime.dev/cortex v0.0.0

// The SDK is a local folder of this repository: nothing is downloaded.
replace cortexruntime.dev/cortex => ../../../sdk/go
