export {
  isUuid,
  PASSWORD_LENGTH,
  validateDisplayName,
  validateEmail,
  validatePassword,
} from './rules';
