import type { ExtensionFactory } from '../../pipeline/service/component.js';
import { oidcSchema, type OidcConfig } from './config.js';
import { OidcAuthenticator } from './oidc-authenticator.js';

export const factory: ExtensionFactory<OidcConfig> = {
  type: 'oidc',
  kind: 'extension',
  schema: oidcSchema,
  create: (settings, config) => new OidcAuthenticator(settings, config),
};
