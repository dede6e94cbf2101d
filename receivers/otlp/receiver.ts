/** The otlp receiver: an OTLP/gRPC and an OTLP/HTTP endpoint, each optional, in front of one consumer. */
import { isAuthenticator, type Authenticator, type ComponentSettings, type Host, type Receiver, type TracesConsumer } from '../../pipeline/service/component.js';
import type { AuthConfig, OtlpReceiverConfig } from './config.js';
import { acceptedEncodings } from './decompress.js';
import { ExportCore, TransportMetrics } from './export-core.js';
import { GrpcServer } from './grpc-server.js';
import { HttpServer } from './http-server.js';
import type { BoundAddress } from '../../pipeline/service/net.js';

export class OtlpReceiver implements Receiver {
  private readonly grpc: GrpcServer | null;
  private readonly http: HttpServer | null;
  private started = false;

  constructor(
    private readonly settings: ComponentSettings,
    private readonly config: OtlpReceiverConfig,
    next: TracesConsumer,
  ) {
    const { id, telemetry } = settings;
    const logger = settings.logger.child({ component: id });
    const core = new ExportCore(next, logger, settings.inspection ?? null);
    const g = config.protocols.grpc;
    const h = config.protocols.http;
    this.grpc = g ? new GrpcServer(id, g, core, new TransportMetrics(telemetry, id, 'grpc'), logger) : null;
    this.http = h ? new HttpServer(id, h, core, new TransportMetrics(telemetry, id, 'http'), logger) : null;
  }

  /** Where the gRPC endpoint listens (the real port when configured with port 0); null when disabled or stopped. */
  get grpcAddress(): BoundAddress | null {
    return this.grpc?.address ?? null;
  }

  get httpAddress(): BoundAddress | null {
    return this.http?.address ?? null;
  }

  async start(host: Host): Promise<void> {
    const grpcAuth = this.resolveAuth(host, this.config.protocols.grpc?.auth, 'grpc');
    const httpAuth = this.resolveAuth(host, this.config.protocols.http?.auth, 'http');
    try {
      if (this.grpc) await this.grpc.start(grpcAuth);
      if (this.http) await this.http.start(httpAuth);
    } catch (err) {
      // Do not leave the first endpoint listening when the second cannot start.
      await this.shutdown(Date.now() + 1000);
      throw err;
    }
    this.started = true;
    const log = this.settings.logger.child({ component: this.settings.id });
    if (this.grpc) log.info('listening for OTLP/gRPC', { address: fmt(this.grpc.address) });
    if (this.http) log.info('listening for OTLP/HTTP', { address: fmt(this.http.address) });
    const a = acceptedEncodings();
    if (!a.zstd || !a.snappy) {
      log.warn('a compression has no native binary on this platform: its requests are refused as an unsupported encoding', { zstd: a.zstd, snappy: a.snappy });
    }
  }

  isReady(): boolean {
    return this.started && (this.grpc === null || this.grpc.listening) && (this.http === null || this.http.listening);
  }

  async shutdown(deadline: number): Promise<void> {
    this.started = false;
    await Promise.all([this.grpc?.shutdown(deadline), this.http?.shutdown(deadline)]);
  }

  private resolveAuth(host: Host, auth: AuthConfig | undefined, protocol: string): Authenticator | null {
    if (auth === undefined) return null;
    const ext = host.getExtension(auth.authenticator);
    if (ext === undefined) throw new Error(`${this.settings.id}: protocols.${protocol}.auth.authenticator: extension ${auth.authenticator} is not configured`);
    if (!isAuthenticator(ext)) throw new Error(`${this.settings.id}: protocols.${protocol}.auth.authenticator: extension ${auth.authenticator} is not an authenticator`);
    return ext;
  }
}

function fmt(a: BoundAddress | null): string {
  if (a === null) return '';
  return a.host.includes(':') ? `[${a.host}]:${a.port}` : `${a.host}:${a.port}`;
}
