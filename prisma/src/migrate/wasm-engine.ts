// Prisma's schema engine, compiled to WebAssembly (`@prisma/schema-engine-wasm`), loaded
// without `--experimental-wasm-modules` and run one engine per call.
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';

import { bindMigrationAwareSqlAdapterFactory } from '@prisma/driver-adapter-utils';
import type { SchemaContainer, SchemaEngine, SchemaFilter } from '@prisma/schema-engine-wasm';
import * as engineGlue from '@prisma/schema-engine-wasm/schema_engine_bg';

import { redact, type DatabaseTarget } from './database-target';
import { EngineAdapterFactory } from './pg-adapter-patch';
import { SchemaEngineError, errorMessage } from './schema-engine-error';

export const NO_FILTERS: SchemaFilter = { externalTables: [], externalEnums: [] };

interface PanicRegistry {
  set_message(message: string): void;
}

/**
 * The bits of Node's global `WebAssembly` used here, typed locally so this file
 * compiles whether or not the project's `lib` includes the DOM typings.
 */
interface WasmRuntime {
  compile(bytes: Uint8Array): Promise<WasmModule>;
  instantiate(
    module: WasmModule,
    imports: Record<string, object>,
  ): Promise<{ exports: Record<string, unknown> }>;
  Module: { imports(module: WasmModule): { module: string; name: string; kind: string }[] };
}
interface WasmModule {
  readonly __brand?: 'WebAssembly.Module';
}

declare global {
  // The engine reports Rust panics through this global (see the engine's panic hook).
  var PRISMA_WASM_PANIC_REGISTRY: PanicRegistry | undefined;
}

let lastPanicMessage: string | undefined;
let wasmReady: Promise<void> | undefined;

/**
 * Instantiates `schema_engine_bg.wasm` and hands it to the package's wasm-bindgen
 * glue. This replaces the package entry point (`schema_engine.js`), which
 * imports the `.wasm` file as an ES module and so needs
 * `--experimental-wasm-modules`. The glue keeps module-level state, so the
 * instance is created once per process.
 */
function loadWasm(): Promise<void> {
  wasmReady ??= (async () => {
    globalThis.PRISMA_WASM_PANIC_REGISTRY ??= {
      set_message(message: string) {
        lastPanicMessage = message;
      },
    };
    const require = createRequire(import.meta.url);
    const gluePath = require.resolve('@prisma/schema-engine-wasm/schema_engine_bg');
    const bytes = await readFile(path.join(path.dirname(gluePath), 'schema_engine_bg.wasm'));
    const wasm = (globalThis as unknown as { WebAssembly: WasmRuntime }).WebAssembly;
    const module = await wasm.compile(bytes);

    // wasm-bindgen imports everything from "./schema_engine_bg.js" (the glue).
    const glue = { ...engineGlue, ...trackedTimerImports() };
    const imports: Record<string, object> = {};
    for (const { module: name } of wasm.Module.imports(module)) imports[name] = glue;
    const instance = await wasm.instantiate(module, imports);
    engineGlue.__wbg_set_wasm(instance.exports);
    const start = instance.exports['__wbindgen_start'];
    if (typeof start === 'function') (start as () => void)();
  })();
  wasmReady.catch(() => {
    wasmReady = undefined;
  });
  return wasmReady;
}

/**
 * The engine arms timeouts (e.g. around taking the migration advisory lock)
 * that it never clears, which would keep the process alive for ~10 s after the
 * work is done. Its `setTimeout` import is replaced by one that records the
 * timers, and `withEngine` clears the leftovers once no engine call is running.
 */
const engineTimers = new Set<ReturnType<typeof setTimeout>>();
let runningEngines = 0;

function trackedTimerImports(): Record<string, unknown> {
  const overrides: Record<string, unknown> = {};
  for (const name of Object.keys(engineGlue)) {
    if (!name.startsWith('__wbg_setTimeout_')) continue;
    overrides[name] = (callback: () => void, delay: number) => {
      const timer = setTimeout(() => {
        engineTimers.delete(timer);
        callback();
      }, delay >>> 0);
      engineTimers.add(timer);
      return timer;
    };
  }
  return overrides;
}

function clearLeftoverEngineTimers(): void {
  if (runningEngines > 0) return;
  for (const timer of engineTimers) clearTimeout(timer);
  engineTimers.clear();
}

/** Schema-engine version (git hash) of the installed wasm build. */
export async function schemaEngineVersion(): Promise<string> {
  await loadWasm();
  return engineGlue.version();
}

/**
 * Runs `fn` with a wasm SchemaEngine connected to the database of `target`,
 * then frees the engine, closes every pool it opened and drops any shadow
 * database left behind.
 */
export async function withEngine<T>(
  target: DatabaseTarget,
  schemaFiles: SchemaContainer[],
  fn: (engine: SchemaEngine) => Promise<T>,
): Promise<T> {
  await loadWasm();
  const factory = new EngineAdapterFactory(target);
  let engine: SchemaEngine | undefined;
  runningEngines += 1;
  try {
    engine = await callEngine('start', target, () =>
      engineGlue.SchemaEngine.new(
        { datamodels: schemaFiles.map((file): [string, string] => [file.path, file.content]) },
        logFromEngine,
        bindMigrationAwareSqlAdapterFactory(factory),
      ),
    );
    return await fn(engine);
  } finally {
    runningEngines -= 1;
    engine?.free();
    await factory.close();
    clearLeftoverEngineTimers();
  }
}

let engineLogger: ((line: string) => void) | undefined;

/**
 * Receives the engine's log lines (JSON tracing events, one per call), e.g.
 * `setSchemaEngineLogger((line) => process.stderr.write(line + '\n'))`.
 * Pass `undefined` to silence them again (the default).
 */
export function setSchemaEngineLogger(logger: ((line: string) => void) | undefined): void {
  engineLogger = logger;
}

function logFromEngine(line: unknown): void {
  engineLogger?.(String(line).trim());
}

/** Runs one engine call and turns its failure into a readable, credential-free error. */
export async function callEngine<T>(
  operation: string,
  target: DatabaseTarget,
  call: () => Promise<T>,
): Promise<T> {
  try {
    return await call();
  } catch (error: unknown) {
    let message = errorMessage(error);
    if (lastPanicMessage !== undefined) {
      message = `${message} (engine panic: ${lastPanicMessage})`;
      lastPanicMessage = undefined;
    }
    // Drop the Rust span trace ("   0: schema_engine_wasm::...") that follows the message.
    message = message.split(/\n\s+0: /)[0]?.trim() ?? message;
    throw new SchemaEngineError(`Schema engine ${operation} failed: ${redact(message, target)}`, {
      cause: error,
    });
  }
}
