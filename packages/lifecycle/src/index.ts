export { createLifecycle, type Lifecycle, type LifecycleOptions } from './lifecycle';
