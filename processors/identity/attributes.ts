/** The span attributes the identity processor writes. */
export const ATTR = {
  verified: 'identity.verified',
  failure: 'identity.failure',
  issuer: 'identity.issuer',
  method: 'identity.method',
  authMethods: 'identity.auth_methods',
  phishingResistant: 'identity.phishing_resistant',
  fingerprint: 'identity.credential.fingerprint',
  pseudoId: 'enduser.pseudo.id',
  userVerified: 'identity.webauthn.user_verified',
  counterRegression: 'identity.webauthn.counter_regression',
} as const;

/** Every attribute this processor writes: removed from every span first, so none can be forged upstream. */
export function protectedKeys(claimTargets: readonly string[]): string[] {
  return [...new Set([...Object.values(ATTR), ...claimTargets])];
}
