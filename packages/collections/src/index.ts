export { BoundedMap } from './bounded-map';
export { shortened } from './text';
