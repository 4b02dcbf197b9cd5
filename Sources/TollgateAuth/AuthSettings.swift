import Foundation
import TollgateJOSE
import TollgateModel

/// The settings of keys, sessions and Checkout references: declared once here, read by
/// the functions that hash keys, verify Clerk sessions or sign references.
public enum AuthSettings {
    public static let clerkIssuer = Setting(
        "TOLLGATE_CLERK_ISSUER", whenUnset: "sessions are refused",
        summary: "the Clerk instance's frontend API URL, the `iss` of its session tokens")
    public static let clerkJWKS = Setting(
        "TOLLGATE_CLERK_JWKS_URL", whenUnset: "`<issuer>/.well-known/jwks.json`",
        summary: "where Clerk's signing keys are (https or file URL)")
    public static let clerkPublicKey = Setting(
        "TOLLGATE_CLERK_PUBLIC_KEY", whenUnset: "keys come from the JWKS URL",
        summary: "Clerk's PEM public key (its JWT key), to verify sessions without fetching keys")
    public static let clerkAuthorizedParties = Setting(
        "TOLLGATE_CLERK_AUTHORIZED_PARTIES", .list, whenUnset: "any origin (a warning at start-up)",
        summary: "the dashboard's origins: a session token's `azp` must be one of them")
    public static let keyPepper = Setting.required(
        "TOLLGATE_KEY_PEPPER", secret: true, summary: "the secret API keys are hashed with (at least 32 bytes), the same for every function"
    )
    public static let checkoutSecret = Setting.required(
        "TOLLGATE_CHECKOUT_SECRET", .list, secret: true,
        summary:
            "signs Checkout references (at least 32 bytes; two separated by a comma while rotating: the first mints, either verifies), the same for account-api and stripe-webhook ([accounts.md](accounts.md#who-may-name-an-account))"
    )

    /// What a function verifying Clerk sessions reads.
    public static let clerk = [clerkIssuer, clerkJWKS, clerkPublicKey, clerkAuthorizedParties]
}

extension ClerkSessionVerifier {
    /// The Clerk instance from the environment, as auth-validator and account-api read it:
    /// `TOLLGATE_CLERK_ISSUER` (the frontend API URL) with `TOLLGATE_CLERK_JWKS_URL` (default
    /// `<issuer>/.well-known/jwks.json`) or a networkless `TOLLGATE_CLERK_PUBLIC_KEY` (PEM),
    /// and `TOLLGATE_CLERK_AUTHORIZED_PARTIES`. nil when no issuer is set.
    public init?(environment: Environment, clock: any TollgateModel.Clock) throws {
        guard let issuer = try environment.text(AuthSettings.clerkIssuer) else { return nil }
        let source: any JWKSource
        if let pem = try environment.text(AuthSettings.clerkPublicKey) {
            do { source = StaticJWKS(only: try RSAPublicKey(pem: pem)) } catch {
                throw ConfigurationError(AuthSettings.clerkPublicKey.name, "is not an RSA public key in PEM")
            }
        } else {
            let text = try environment.text(AuthSettings.clerkJWKS) ?? issuer + "/.well-known/jwks.json"
            guard let url = URL(string: text), url.scheme == "https" || url.isFileURL else {
                throw ConfigurationError(AuthSettings.clerkJWKS.name, "must be an https or file URL")
            }
            source = RemoteJWKS(url: url, clock: clock)
        }
        self.init(
            issuer: issuer, authorizedParties: Set(environment.list(AuthSettings.clerkAuthorizedParties)), keys: source, clock: clock)
    }
}

extension ClerkSessionVerifier {
    /// What start-up warns of in the Clerk settings: sessions accepted from any origin when
    /// an issuer is set without `TOLLGATE_CLERK_AUTHORIZED_PARTIES` (Clerk's `azp` names
    /// the origin a token was issued to; unchecked, a token minted for another of the
    /// instance's apps passes).
    public static func startupWarnings(_ environment: Environment) -> [String] {
        guard environment.isSet(AuthSettings.clerkIssuer), environment.list(AuthSettings.clerkAuthorizedParties).isEmpty else { return [] }
        return [
            "TOLLGATE_CLERK_AUTHORIZED_PARTIES is not set: session tokens issued to any origin (azp) are accepted; set it to the dashboard's origins"
        ]
    }
}

extension APIKeys {
    /// The key pepper from `TOLLGATE_KEY_PEPPER`, as every function that hashes keys reads it.
    public init(environment: Environment) throws {
        do {
            try self.init(pepper: try environment.required(AuthSettings.keyPepper))
        } catch is TollgateError {
            throw ConfigurationError(AuthSettings.keyPepper.name, "must be at least 32 bytes")
        }
    }
}

extension CheckoutReferenceSigner {
    /// `TOLLGATE_CHECKOUT_SECRET`, as account-api (which mints) and stripe-webhook (which
    /// verifies) read it; the error never echoes the value.
    public init(environment: Environment) throws {
        do {
            try self.init(secrets: environment.list(AuthSettings.checkoutSecret))
        } catch {
            throw ConfigurationError(
                AuthSettings.checkoutSecret.name, "must be one secret of at least 32 bytes, or two separated by a comma while rotating")
        }
    }
}
