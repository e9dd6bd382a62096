/*
 * guest_native.c - a guest's steps through Wasmtime's C API, several C calls per foreign call.
 *
 * sandbox/guest.py drives a store and its instance through its own ctypes foreign functions:
 * each costs ~0.8 µs of Python around a few ns of C. Here the hot steps are one foreign call
 * each: a new store with its limits, fuel and deadline (cortex_store); instantiation with
 * finding the memory (cortex_instantiate); a guest call with finding its export (cortex_call);
 * a capability call under the ABI: allocate, check, copy the input, call (cortex_run); and a
 * whole call, from instantiation to finding the result (cortex_invoke); and a module's
 * exports or imports as JSON (cortex_describe, for sandbox/describe.py).
 * Nothing here trusts the guest: the pointer the allocator returns is checked against the
 * memory's size (after the allocation, which may grow it) before a byte is copied, exactly as
 * Guest.write does; the result's length prefix and bytes are checked against it before they
 * are read, exactly as Guest.read does; and every export is checked to be a function before
 * it is called.
 *
 * The library links against nothing: sandbox/guest.py passes Wasmtime's functions, the layout
 * of the few structures it touches and its scratch space once, at load (cortex_native_init), so
 * it needs neither Wasmtime's headers nor a particular build of its library. Built by
 * scripts/build-native (make does it); without it, guest.py takes the same steps in Python,
 * and tests/test_native.py holds the two to the same outcomes.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "a result's length prefix is read as wasm stores it: little-endian"
#endif

typedef bool (*export_nth_fn)(void *context, const void *instance, size_t index, char **name,
                              size_t *name_length, uint8_t *item);
typedef void *(*call_unchecked_fn)(void *context, const void *func, uint8_t *values,
                                   size_t values_length, void **trap);
typedef uint8_t *(*memory_data_fn)(const void *context, const void *memory);
typedef size_t (*memory_size_fn)(const void *context, const void *memory);
typedef void *(*store_new_fn)(void *engine, void *data, void *finalizer);
typedef void *(*store_context_fn)(void *store);
typedef void (*store_limiter_fn)(void *store, int64_t memory_size, int64_t table_elements,
                                 int64_t instances, int64_t tables, int64_t memories);
typedef void *(*set_fuel_fn)(void *context, uint64_t fuel);
typedef void (*set_epoch_deadline_fn)(void *context, uint64_t ticks);
typedef void *(*instantiate_fn)(const void *pre, void *context, void *instance, void **trap);
typedef void *(*memory_grow_fn)(void *context, const void *memory, uint64_t delta,
                                uint64_t *previous_pages);
/* wasm.h's vectors of pointers (and, read as bytes, names). */
typedef struct {
    size_t size;
    void **data;
} vec_t;
typedef void (*module_types_fn)(const void *module, vec_t *out);
typedef void (*vec_delete_fn)(vec_t *vec);
typedef const vec_t *(*name_of_fn)(const void *item);
typedef const void *(*type_of_fn)(const void *item);
typedef uint8_t (*kind_of_fn)(const void *type);
typedef const void *(*as_type_fn)(const void *type);
typedef const vec_t *(*valtypes_fn)(const void *functype);
typedef uint64_t (*memory_minimum_fn)(const void *memorytype);
typedef bool (*memory_maximum_fn)(const void *memorytype, uint64_t *maximum);
typedef bool (*memory_flag_fn)(const void *memorytype);

/* The interface between this file and sandbox/guest.py (NATIVE_ABI there): bumped whenever a
 * function's parameters or the scratch layout change, so a library built from older source is
 * refused instead of called with the wrong arguments. */
#define CORTEX_NATIVE_ABI 4

int32_t cortex_native_abi(void) { return CORTEX_NATIVE_ABI; }

static export_nth_fn export_nth;
static call_unchecked_fn call_unchecked;
static memory_data_fn memory_data;
static memory_size_fn memory_size;
static store_new_fn store_new;
static store_context_fn store_context;
static store_limiter_fn store_limiter;
static set_fuel_fn set_fuel;
static set_epoch_deadline_fn set_epoch_deadline;
static instantiate_fn instantiate;
static memory_grow_fn memory_grow;
static module_types_fn module_exports, module_imports;
static vec_delete_fn exports_delete, imports_delete;
static name_of_fn export_name, import_module, import_name;
static type_of_fn export_type, import_type;
static kind_of_fn externtype_kind, valtype_kind;
static as_type_fn as_functype, as_memorytype;
static valtypes_fn functype_params, functype_results;
static memory_minimum_fn memory_minimum;
static memory_maximum_fn memory_maximum;
static memory_flag_fn memory_is64, memory_shared;
/* wasmtime_extern_t: its kind is the first byte; its function starts at `extern_of`. */
static size_t extern_of;
static uint8_t func_kind;
static uint8_t memory_kind;
/* wasmtime_val_raw_t's size: argument i (an i32) at values + i * val_size, the result at 0. */
static size_t val_size;
static size_t max_args;

/* The scratch space guest.py shares with this code (one guest call at a time per process). */
struct scratch {
    void **trap;
    char **name;
    size_t *name_length;
    uint8_t *func;   /* a wasmtime_extern_t */
    uint8_t *values; /* max_args wasmtime_val_raw_t */
    void **error;
    uint64_t *result;
};
static struct scratch s;

/* Wasmtime's functions this file calls, in the order of `struct functions`. */
struct functions {
    void *export_nth, *call_unchecked, *memory_data, *memory_size, *store_new, *store_context,
        *store_limiter, *set_fuel, *set_epoch_deadline, *instantiate, *memory_grow,
        *module_exports, *module_imports, *exports_delete, *imports_delete, *export_name,
        *export_type, *import_module, *import_name, *import_type, *externtype_kind,
        *as_functype, *as_memorytype, *functype_params, *functype_results, *valtype_kind,
        *memory_minimum, *memory_maximum, *memory_is64, *memory_shared;
};

void cortex_native_init(const struct functions *f, size_t of, uint8_t func, uint8_t memory,
                        size_t raw_size, size_t args, void **trap, char **name,
                        size_t *name_length, uint8_t *func_extern, uint8_t *values, void **error,
                        uint64_t *result) {
    export_nth = (export_nth_fn)f->export_nth;
    call_unchecked = (call_unchecked_fn)f->call_unchecked;
    memory_data = (memory_data_fn)f->memory_data;
    memory_size = (memory_size_fn)f->memory_size;
    store_new = (store_new_fn)f->store_new;
    store_context = (store_context_fn)f->store_context;
    store_limiter = (store_limiter_fn)f->store_limiter;
    set_fuel = (set_fuel_fn)f->set_fuel;
    set_epoch_deadline = (set_epoch_deadline_fn)f->set_epoch_deadline;
    instantiate = (instantiate_fn)f->instantiate;
    memory_grow = (memory_grow_fn)f->memory_grow;
    module_exports = (module_types_fn)f->module_exports;
    module_imports = (module_types_fn)f->module_imports;
    exports_delete = (vec_delete_fn)f->exports_delete;
    imports_delete = (vec_delete_fn)f->imports_delete;
    export_name = (name_of_fn)f->export_name;
    export_type = (type_of_fn)f->export_type;
    import_module = (name_of_fn)f->import_module;
    import_name = (name_of_fn)f->import_name;
    import_type = (type_of_fn)f->import_type;
    externtype_kind = (kind_of_fn)f->externtype_kind;
    as_functype = (as_type_fn)f->as_functype;
    as_memorytype = (as_type_fn)f->as_memorytype;
    functype_params = (valtypes_fn)f->functype_params;
    functype_results = (valtypes_fn)f->functype_results;
    valtype_kind = (kind_of_fn)f->valtype_kind;
    memory_minimum = (memory_minimum_fn)f->memory_minimum;
    memory_maximum = (memory_maximum_fn)f->memory_maximum;
    memory_is64 = (memory_flag_fn)f->memory_is64;
    memory_shared = (memory_flag_fn)f->memory_shared;
    extern_of = of;
    func_kind = func;
    memory_kind = memory;
    val_size = raw_size;
    max_args = args;
    s = (struct scratch){trap, name, name_length, func_extern, values, error, result};
}

/* A new store with its limits, fuel and epoch deadline (Guest.configured): the store, or NULL
 * if Wasmtime could not make one; its context in *result; a failure to set the fuel in *error. */
void *cortex_store(void *engine, uint64_t fuel, uint64_t ticks, int64_t memory_bytes,
                   int64_t table_elements, int64_t instances, int64_t tables, int64_t memories) {
    *s.error = NULL;
    *s.result = 0;
    void *store = store_new(engine, NULL, NULL);
    if (store == NULL) return NULL;
    void *context = store_context(store);
    *s.result = (uint64_t)(uintptr_t)context;
    store_limiter(store, memory_bytes, table_elements, instances, tables, memories);
    *s.error = set_fuel(context, fuel);
    if (*s.error == NULL) set_epoch_deadline(context, ticks);
    return store;
}

/* Instantiate `pre` into `instance` (its start function runs) and find its memory, export
 * number `memory_index`, into `memory_extern` (Guest.instantiate): 0, with the memory's size
 * in *result; 1 if instantiation failed (*trap or *error says how); 2 if that export is not a
 * memory. */
int32_t cortex_instantiate(const void *pre, void *context, void *instance,
                           uint8_t *memory_extern, size_t memory_index) {
    *s.trap = NULL;
    *s.result = 0;
    *s.error = instantiate(pre, context, instance, s.trap);
    if (*s.error || *s.trap) return 1;
    if (!export_nth(context, instance, memory_index, s.name, s.name_length, memory_extern) ||
        memory_extern[0] != memory_kind)
        return 2;
    *s.result = memory_size(context, memory_extern + extern_of);
    return 0;
}

enum {
    RUN_OK = 0,
    RUN_ALLOC_NOT_FUNC = 1,
    RUN_ALLOC_FAILED = 2, /* trapped or errored: *trap or *error says which */
    RUN_ALLOC_NULL = 3,
    RUN_ALLOC_OUT_OF_RANGE = 4, /* *result holds the pointer */
    RUN_EXPORT_NOT_FUNC = 5,
    RUN_EXPORT_FAILED = 6,
    RUN_TOO_LONG = 7, /* an input of 2 GiB or more: the caller never sends one */
};

/* Calls export number `index` with two i32 arguments: 0, or -1 (not a function), -2 (failed). */
static int call_export(void *context, const void *instance, size_t index, int32_t a0,
                       int32_t a1) {
    if (!export_nth(context, instance, index, s.name, s.name_length, s.func) ||
        s.func[0] != func_kind)
        return -1;
    memset(s.values, 0, val_size * max_args);
    memcpy(s.values, &a0, sizeof a0);
    memcpy(s.values + val_size, &a1, sizeof a1);
    *s.trap = NULL;
    *s.error = call_unchecked(context, s.func + extern_of, s.values, max_args, s.trap);
    return (*s.error || *s.trap) ? -2 : 0;
}

/* Guest.call: export number `index` with (up to) two i32 arguments; 0, its result in the
 * values' first slot; -1 if it is not a function; -2 if it failed (*trap or *error). */
int32_t cortex_call(void *context, const void *instance, size_t index, int32_t a0, int32_t a1) {
    *s.error = NULL;
    return call_export(context, instance, index, a0, a1);
}

static uint32_t result_u32(void) {
    uint32_t value;
    memcpy(&value, s.values, sizeof value);
    return value;
}

/* The ABI's call: ptr = alloc(max(len, 1)); input copied to ptr; *result = export(ptr, len). */
int32_t cortex_run(void *context, const void *instance, const void *memory, size_t alloc,
                   size_t export, const uint8_t *input, size_t length) {
    *s.error = NULL;
    *s.result = 0;
    if (length > INT32_MAX) return RUN_TOO_LONG;
    int status = call_export(context, instance, alloc, (int32_t)(length ? length : 1), 0);
    if (status == -1) return RUN_ALLOC_NOT_FUNC;
    if (status == -2) return RUN_ALLOC_FAILED;
    uint32_t ptr = result_u32();
    *s.result = ptr;
    if (ptr == 0) return RUN_ALLOC_NULL;
    /* The allocation may have grown (and moved) the memory: size and base are read now. */
    if ((uint64_t)ptr + length > (uint64_t)memory_size(context, memory))
        return RUN_ALLOC_OUT_OF_RANGE;
    if (length) memcpy(memory_data(context, memory) + ptr, input, length);
    status = call_export(context, instance, export, (int32_t)ptr, (int32_t)length);
    if (status == -1) return RUN_EXPORT_NOT_FUNC;
    if (status == -2) return RUN_EXPORT_FAILED;
    *s.result = result_u32();
    return RUN_OK;
}

enum {
    /* 0 and 1-7: cortex_run's outcomes (RUN_*), the capability's call */
    INVOKE_INSTANTIATE_FAILED = 8, /* *trap or *error says how */
    INVOKE_NO_MEMORY = 9,
    INVOKE_GROW_FAILED = 10, /* *error says why */
    INVOKE_INIT_NOT_FUNC = 11,
    INVOKE_INIT_FAILED = 12, /* *trap or *error */
    INVOKE_RESULT_NULL = 13,
    INVOKE_RESULT_OUT_OF_RANGE = 14, /* the result's 4-byte length runs past the memory's end */
    INVOKE_RESULT_TOO_LONG = 15,     /* longer than max_output: out->length says how long */
    INVOKE_RESULT_BODY_OUT_OF_RANGE = 16, /* its bytes run past the end: out->length as above */
};

/* What cortex_invoke found, for the caller to read after it returned. */
struct invocation {
    uint64_t setup_bytes; /* memory after instantiation, growth and before _initialize */
    uint64_t result;      /* the capability's result pointer, then its bytes' offset */
    uint64_t length;      /* the result's length (from its 4-byte prefix) */
    uint64_t base;        /* the memory's base address when the call returned */
};

#define PAGE_BYTES 65536u
#define NO_EXPORT SIZE_MAX

/* A whole call in one foreign call (Executor's native path): with `pre`, instantiate it into
 * `instance` and find its memory (export `memory_index`, into `memory_extern`), grow that to
 * `min_pages`, call `initialize` (NO_EXPORT: none); without, the instance is already made (a
 * prepared one). Then the ABI's call (cortex_run) and the result's place, checked as
 * execute.py's _read_output does: a u32 length at the result pointer, at most `max_output`,
 * its bytes within memory. 0 with *out filled in, or the first step that failed. */
int32_t cortex_invoke(const void *pre, void *context, void *instance, uint8_t *memory_extern,
                      size_t memory_index, uint64_t min_pages, size_t initialize, size_t alloc,
                      size_t export, const uint8_t *input, size_t length, uint64_t max_output,
                      struct invocation *out) {
    memset(out, 0, sizeof *out);
    void *memory = memory_extern + extern_of;
    if (pre != NULL) {
        *s.trap = NULL;
        *s.error = instantiate(pre, context, instance, s.trap);
        if (*s.error || *s.trap) return INVOKE_INSTANTIATE_FAILED;
        if (!export_nth(context, instance, memory_index, s.name, s.name_length, memory_extern) ||
            memory_extern[0] != memory_kind)
            return INVOKE_NO_MEMORY;
        uint64_t pages = memory_size(context, memory) / PAGE_BYTES;
        if (min_pages > pages) {
            uint64_t previous;
            *s.error = memory_grow(context, memory, min_pages - pages, &previous);
            if (*s.error) return INVOKE_GROW_FAILED;
        }
        out->setup_bytes = memory_size(context, memory);
        if (initialize != NO_EXPORT) {
            *s.error = NULL;
            int status = call_export(context, instance, initialize, 0, 0);
            if (status == -1) return INVOKE_INIT_NOT_FUNC;
            if (status == -2) return INVOKE_INIT_FAILED;
        }
    }
    int32_t status = cortex_run(context, instance, memory, alloc, export, input, length);
    if (status != RUN_OK) return status;
    uint64_t ptr = (uint32_t)*s.result;
    out->result = ptr;
    if (ptr == 0) return INVOKE_RESULT_NULL;
    uint64_t size = memory_size(context, memory);
    if (ptr + 4 > size) return INVOKE_RESULT_OUT_OF_RANGE;
    uint8_t *base = memory_data(context, memory);
    uint32_t result_length;
    memcpy(&result_length, base + ptr, sizeof result_length); /* little-endian, as wasm is */
    out->length = result_length;
    if (result_length > max_output) return INVOKE_RESULT_TOO_LONG;
    if (ptr + 4 + result_length > size) return INVOKE_RESULT_BODY_OUT_OF_RANGE;
    out->result = ptr + 4;
    out->base = (uint64_t)(uintptr_t)base;
    return RUN_OK;
}

/* cortex_describe: a module's exports (or imports) as the JSON array sandbox/describe.py's
 * Python steps build, key for key, written into out (at most capacity bytes). */
struct writer {
    char *out;
    size_t capacity, length;
};

static void put(struct writer *w, const char *bytes, size_t count) {
    if (w->length + count <= w->capacity) memcpy(w->out + w->length, bytes, count);
    w->length += count; /* past capacity: only counted, for the caller's second try */
}

static void put_str(struct writer *w, const char *text) { put(w, text, strlen(text)); }

static void put_u64(struct writer *w, uint64_t value) {
    char digits[21];
    size_t at = sizeof digits;
    do {
        digits[--at] = (char)('0' + value % 10);
        value /= 10;
    } while (value);
    put(w, digits + at, sizeof digits - at);
}

/* A name as a JSON string: wasm names are UTF-8 (the parser checked), so only quotes,
 * backslashes and control characters need escaping. */
static void put_name(struct writer *w, const vec_t *name) {
    static const char hex[] = "0123456789abcdef";
    const unsigned char *bytes = (const unsigned char *)name->data;
    put(w, "\"", 1);
    for (size_t i = 0; i < name->size; i++) {
        unsigned char c = bytes[i];
        if (c == '"' || c == '\\') {
            char escaped[2] = {'\\', (char)c};
            put(w, escaped, 2);
        } else if (c < 0x20) {
            char escaped[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
            put(w, escaped, 6);
        } else {
            put(w, (const char *)&c, 1);
        }
    }
    put(w, "\"", 1);
}

static void put_valtypes(struct writer *w, const vec_t *types) {
    put(w, "[", 1);
    for (size_t i = 0; i < types->size; i++) {
        if (i) put(w, ",", 1);
        uint8_t kind = valtype_kind(types->data[i]);
        switch (kind) {
        case 0: put_str(w, "\"i32\""); break;
        case 1: put_str(w, "\"i64\""); break;
        case 2: put_str(w, "\"f32\""); break;
        case 3: put_str(w, "\"f64\""); break;
        case 128: put_str(w, "\"anyref\""); break;
        case 129: put_str(w, "\"funcref\""); break;
        default:
            put_str(w, "\"ValType(");
            put_u64(w, kind);
            put_str(w, ")\"");
        }
    }
    put(w, "]", 1);
}

enum { EXTERN_FUNC = 0, EXTERN_GLOBAL = 1, EXTERN_TABLE = 2, EXTERN_MEMORY = 3 };

static void put_extern(struct writer *w, const void *type, bool memory_details) {
    uint8_t kind = externtype_kind(type);
    if (kind == EXTERN_FUNC) {
        const void *func = as_functype(type);
        put_str(w, "\"kind\":\"func\",\"params\":");
        put_valtypes(w, functype_params(func));
        put_str(w, ",\"results\":");
        put_valtypes(w, functype_results(func));
    } else if (kind == EXTERN_MEMORY) {
        put_str(w, "\"kind\":\"memory\"");
        if (!memory_details) return;
        const void *memory = as_memorytype(type);
        uint64_t maximum = 0;
        bool bounded = memory_maximum(memory, &maximum);
        put_str(w, ",\"min_pages\":");
        put_u64(w, memory_minimum(memory));
        put_str(w, ",\"max_pages\":");
        if (bounded) put_u64(w, maximum); else put_str(w, "null");
        put_str(w, memory_is64(memory) ? ",\"memory64\":true" : ",\"memory64\":false");
        put_str(w, memory_shared(memory) ? ",\"shared\":true" : ",\"shared\":false");
    } else if (kind == EXTERN_TABLE) {
        put_str(w, "\"kind\":\"table\"");
    } else if (kind == EXTERN_GLOBAL) {
        put_str(w, "\"kind\":\"global\"");
    } else {
        put_str(w, "\"kind\":\"extern(");
        put_u64(w, kind);
        put_str(w, ")\"");
    }
}

/* The module's exports (imports: its imports) as JSON in out: its length, which if over
 * capacity means out holds only part of it (call again with that much room). */
size_t cortex_describe(const void *module, int32_t imports, char *out, size_t capacity) {
    struct writer w = {out, capacity, 0};
    vec_t items = {0, NULL};
    (imports ? module_imports : module_exports)(module, &items);
    put(&w, "[", 1);
    for (size_t i = 0; i < items.size; i++) {
        const void *item = items.data[i];
        put_str(&w, i ? ",{" : "{");
        if (imports) {
            put_str(&w, "\"module\":");
            put_name(&w, import_module(item));
            put_str(&w, ",\"name\":");
            put_name(&w, import_name(item));
            put(&w, ",", 1);
            put_extern(&w, import_type(item), false);
        } else {
            put_str(&w, "\"name\":");
            put_name(&w, export_name(item));
            put(&w, ",", 1);
            put_extern(&w, export_type(item), true);
        }
        put(&w, "}", 1);
    }
    put(&w, "]", 1);
    (imports ? imports_delete : exports_delete)(&items);
    return w.length;
}
