export {
  isCommonPassword,
  isUuid,
  PASSWORD_LENGTH,
  requireId,
  validateDisplayName,
  validateEmail,
  validatePassword,
} from './rules';
export { decodeCursor, encodeCursor, type CursorPosition } from './cursor';
