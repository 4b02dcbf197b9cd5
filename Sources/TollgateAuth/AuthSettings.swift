import Foundation
import TollgateAuth
import TollgateJOSE
import TollgateModel

extension ClerkSessionVerifier {
    /// The Clerk instance from the environment, as auth-validator and account-api read it:
    /// `TOLLGATE_CLERK_ISSUER` (the frontend API URL) with `TOLLGATE_CLERK_JWKS_URL` (default
    /// `<issuer>/.well-known/jwks.json`) or a networkless `TOLLGATE_CLERK_PUBLIC_KEY` (PEM),
    /// and `TOLLGATE_CLERK_AUTHORIZED_PARTIES`. nil when no issuer is set.
    public init?(environment: Environment, clock: any TollgateModel.Clock) throws {
        guard let issuer = environment["TOLLGATE_CLERK_ISSUER"] else { return nil }
        let source: any JWKSource
        if let pem = environment["TOLLGATE_CLERK_PUBLIC_KEY"] {
            do { source = StaticJWKS(only: try RSAPublicKey(pem: pem)) } catch {
                throw ConfigurationError("TOLLGATE_CLERK_PUBLIC_KEY", "is not an RSA public key in PEM")
            }
        } else {
            let text = environment["TOLLGATE_CLERK_JWKS_URL"] ?? issuer + "/.well-known/jwks.json"
            guard let url = URL(string: text), url.scheme == "https" || url.isFileURL else {
                throw ConfigurationError("TOLLGATE_CLERK_JWKS_URL", "must be an https or file URL")
            }
            source = RemoteJWKS(url: url, clock: clock)
        }
        self.init(
            issuer: issuer, authorizedParties: Set(environment.list("TOLLGATE_CLERK_AUTHORIZED_PARTIES")), keys: source, clock: clock)
    }
}

extension ClerkSessionVerifier {
    /// What start-up warns of in the Clerk settings: sessions accepted from any origin when
    /// an issuer is set without `TOLLGATE_CLERK_AUTHORIZED_PARTIES` (Clerk's `azp` names
    /// the origin a token was issued to; unchecked, a token minted for another of the
    /// instance's apps passes).
    public static func startupWarnings(_ environment: Environment) -> [String] {
        guard environment["TOLLGATE_CLERK_ISSUER"] != nil, environment.list("TOLLGATE_CLERK_AUTHORIZED_PARTIES").isEmpty else { return [] }
        return [
            "TOLLGATE_CLERK_AUTHORIZED_PARTIES is not set: session tokens issued to any origin (azp) are accepted; set it to the dashboard's origins"
        ]
    }
}

extension APIKeys {
    /// The key pepper from `TOLLGATE_KEY_PEPPER`, as every function that hashes keys reads it.
    public init(environment: Environment) throws {
        do {
            try self.init(pepper: try environment.required("TOLLGATE_KEY_PEPPER"))
        } catch is TollgateError {
            throw ConfigurationError("TOLLGATE_KEY_PEPPER", "must be at least 32 bytes")
        }
    }
}

extension CheckoutReferenceSigner {
    /// `TOLLGATE_CHECKOUT_SECRET`, as account-api (which mints) and stripe-webhook (which
    /// verifies) read it; the error never echoes the value.
    public init(environment: Environment) throws {
        do {
            try self.init(secrets: environment.list("TOLLGATE_CHECKOUT_SECRET"))
        } catch {
            throw ConfigurationError(
                "TOLLGATE_CHECKOUT_SECRET", "must be one secret of at least 32 bytes, or two separated by a comma while rotating")
        }
    }
}
