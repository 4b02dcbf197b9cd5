import TollgateGoogle
import TollgateModel
import TollgateRuntime

extension Environment {
    /// The process environment with each of the function's declared secrets that holds a
    /// Secret Manager reference (`sm://projects/P/secrets/NAME[/versions/V]`) replaced by
    /// the secret's value, read once at startup. Cloud Run can inject secrets as plain
    /// values itself; a reference is for environments where it does not (or to pin a version
    /// in one place). Values that are not references are left as they are.
    /// - Throws: ``ConfigurationError`` naming the variable whose reference cannot be read.
    public static func resolvingSecrets(
        of declaration: FunctionDeclaration, in environment: Environment = Environment(), google: GoogleCloud? = nil
    ) async throws -> Environment {
        var values = environment.values
        let references = declaration.secrets.filter { values[$0]?.hasPrefix("sm://") == true }
        guard !references.isEmpty else { return environment }
        let google = google ?? GoogleCloud(environment: environment.values)
        let manager = try google.secretManager()
        for name in references {
            do { values[name] = try await manager.access(values[name]!) } catch let error as TollgateError {
                throw ConfigurationError(name, "names a Secret Manager version that cannot be read: \(error.message)")
            }
        }
        return Environment(values)
    }
}
