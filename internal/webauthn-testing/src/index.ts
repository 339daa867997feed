export {
  createSoftwareAuthenticator,
  type SoftwareAuthenticator,
  type SoftwareCredential,
} from './software-authenticator';
