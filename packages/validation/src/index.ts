export {
  isCommonPassword,
  isUuid,
  PASSWORD_LENGTH,
  validateDisplayName,
  validateEmail,
  validatePassword,
} from './rules';
export { decodeCursor, encodeCursor, type CursorPosition } from './cursor';
