export {
  findIllFormedText,
  isCommonPassword,
  isUuid,
  normalizeEmail,
  PASSWORD_LENGTH,
  requireId,
  validateDisplayName,
  requirePlainText,
  validateEmail,
  validatePassword,
} from './rules';
export {
  decodeCursor,
  decodeSequenceCursor,
  encodeCursor,
  encodeSequenceCursor,
  type CursorPosition,
} from './cursor';
export {
  readKeysetPage,
  type KeysetCondition,
  type KeysetOrder,
  type KeysetPage,
  type KeysetQuery,
} from './keyset';
