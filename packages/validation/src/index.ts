export {
  isCommonPassword,
  isUuid,
  PASSWORD_LENGTH,
  validateDisplayName,
  validateEmail,
  validatePassword,
} from './rules';
