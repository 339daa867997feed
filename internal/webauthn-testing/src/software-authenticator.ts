// A software WebAuthn authenticator for tests: it answers creation and request options the way
// a browser and a platform authenticator together would (attestation format "none", ES256 on
// P-256), with node:crypto for the keys and signatures and the CBOR encoder @simplewebauthn
// ships. Nothing here verifies anything: that is the server's job under test.
import { createHash, generateKeyPairSync, randomBytes, sign, type KeyObject } from 'node:crypto';
import { isoCBOR } from '@simplewebauthn/server/helpers';

/** A credential the authenticator holds (a copy of it is a cloned authenticator). */
export interface SoftwareCredential {
  /** base64url */
  id: string;
  privateKey: KeyObject;
  /** base64url, the user handle the registration options named. */
  userHandle: string;
  rpId: string;
  /** The signature counter the next assertion reports is this plus one. */
  counter: number;
}

export interface CeremonyOverrides {
  /** The origin the "browser" puts in the client data (default: the authenticator's). */
  origin?: string;
  /** Report the user as verified (PIN, biometrics); default true. */
  userVerified?: boolean;
  /** Sign with this credential instead of the newest (e.g. a clone). */
  credential?: SoftwareCredential;
}

export interface SoftwareAuthenticator {
  readonly credentials: SoftwareCredential[];
  /** navigator.credentials.create: a RegistrationResponseJSON, as a string. */
  create(optionsJson: string, overrides?: CeremonyOverrides): string;
  /** navigator.credentials.get: an AuthenticationResponseJSON, as a string. */
  get(optionsJson: string, overrides?: CeremonyOverrides): string;
}

const FLAG_USER_PRESENT = 0x01;
const FLAG_USER_VERIFIED = 0x04;
const FLAG_ATTESTED_DATA = 0x40;
const COSE_ALG_ES256 = -7;

const b64url = (bytes: Uint8Array) => Buffer.from(bytes).toString('base64url');
const sha256 = (data: Uint8Array | string) => createHash('sha256').update(data).digest();

function uint32(value: number): Buffer {
  const buffer = Buffer.alloc(4);
  buffer.writeUInt32BE(value >>> 0);
  return buffer;
}

function coseKeyOf(privateKey: KeyObject): Uint8Array {
  const jwk = privateKey.export({ format: 'jwk' });
  return isoCBOR.encode(
    new Map<number, number | Uint8Array>([
      [1, 2], // kty: EC2
      [3, COSE_ALG_ES256],
      [-1, 1], // crv: P-256
      [-2, new Uint8Array(Buffer.from(jwk.x ?? '', 'base64url'))],
      [-3, new Uint8Array(Buffer.from(jwk.y ?? '', 'base64url'))],
    ]),
  );
}

function clientDataJSON(type: string, challenge: string, origin: string): Buffer {
  return Buffer.from(JSON.stringify({ type, challenge, origin, crossOrigin: false }));
}

function flags(userVerified: boolean | undefined, extra = 0): number {
  return FLAG_USER_PRESENT | (userVerified === false ? 0 : FLAG_USER_VERIFIED) | extra;
}

/** An authenticator whose ceremonies come from `origin` (the page's origin). */
export function createSoftwareAuthenticator(origin: string): SoftwareAuthenticator {
  const credentials: SoftwareCredential[] = [];

  return {
    credentials,

    create(optionsJson, overrides = {}) {
      const options = JSON.parse(optionsJson) as {
        challenge: string;
        rp: { id?: string };
        user: { id: string };
      };
      const rpId = options.rp.id ?? new URL(origin).hostname;
      const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
      const id = randomBytes(32);
      const credentialIdLength = Buffer.alloc(2);
      credentialIdLength.writeUInt16BE(id.length);
      const authData = Buffer.concat([
        sha256(rpId),
        Buffer.from([flags(overrides.userVerified, FLAG_ATTESTED_DATA)]),
        uint32(0),
        Buffer.alloc(16), // AAGUID: none
        credentialIdLength,
        id,
        coseKeyOf(privateKey),
      ]);
      const attestationObject = isoCBOR.encode(
        new Map<string, string | Map<string, string> | Uint8Array>([
          ['fmt', 'none'],
          ['attStmt', new Map<string, string>()],
          ['authData', new Uint8Array(authData)],
        ]),
      );
      credentials.push({
        id: b64url(id),
        privateKey,
        userHandle: options.user.id,
        rpId,
        counter: 0,
      });
      return JSON.stringify({
        id: b64url(id),
        rawId: b64url(id),
        type: 'public-key',
        response: {
          clientDataJSON: b64url(
            clientDataJSON('webauthn.create', options.challenge, overrides.origin ?? origin),
          ),
          attestationObject: b64url(attestationObject),
          transports: ['internal'],
        },
        clientExtensionResults: {},
        authenticatorAttachment: 'platform',
      });
    },

    get(optionsJson, overrides = {}) {
      const options = JSON.parse(optionsJson) as { challenge: string };
      const credential = overrides.credential ?? credentials.at(-1);
      if (!credential) throw new Error('the software authenticator holds no credential');
      credential.counter += 1;
      const authData = Buffer.concat([
        sha256(credential.rpId),
        Buffer.from([flags(overrides.userVerified)]),
        uint32(credential.counter),
      ]);
      const client = clientDataJSON('webauthn.get', options.challenge, overrides.origin ?? origin);
      const signature = sign('sha256', Buffer.concat([authData, sha256(client)]), {
        key: credential.privateKey,
        dsaEncoding: 'der',
      });
      return JSON.stringify({
        id: credential.id,
        rawId: credential.id,
        type: 'public-key',
        response: {
          clientDataJSON: b64url(client),
          authenticatorData: b64url(authData),
          signature: b64url(signature),
          userHandle: credential.userHandle,
        },
        clientExtensionResults: {},
        authenticatorAttachment: 'platform',
      });
    },
  };
}
