import Foundation

/// One environment variable Tollgate reads, declared once: start-up parses it by this
/// declaration, `docs/settings.md` is rendered from it, and the local cloud must supply
/// every required one. Read only through ``Environment``'s accessors, which take a
/// `Setting`, so nothing reads a variable that is not declared.
public struct Setting: Sendable, Hashable, Comparable {
    public enum Kind: Sendable, Hashable {
        /// Any text; `choices`, when given, are the only ones accepted.
        case text(choices: [String] = [])
        /// A whole number within the range.
        case integer(ClosedRange<Int>)
        /// Comma-separated items, trimmed, empty items dropped.
        case list
    }

    public let name: String
    public let kind: Kind
    /// The value when unset; nil when unset has a meaning of its own (`whenUnset`).
    public let defaultValue: String?
    /// What unset means, when there is no default value ("required", "not served").
    public let whenUnset: String?
    /// Held in Secret Manager in the cloud, never in a log or an error.
    public let isSecret: Bool
    /// One line for the settings reference.
    public let summary: String

    public init(
        _ name: String, _ kind: Kind = .text(), default defaultValue: String? = nil, whenUnset: String? = nil, secret: Bool = false,
        summary: String
    ) {
        self.name = name
        self.kind = kind
        self.defaultValue = defaultValue
        self.whenUnset = whenUnset
        self.isSecret = secret
        self.summary = summary
    }

    /// A setting start-up cannot do without.
    public static func required(_ name: String, _ kind: Kind = .text(), secret: Bool = false, summary: String) -> Setting {
        Setting(name, kind, whenUnset: "required", secret: secret, summary: summary)
    }

    public var isRequired: Bool { whenUnset == "required" }

    /// `, not 'VALUE'` for an error line; nothing for a secret, whose value never reaches a log.
    func quoting(_ value: String) -> String { isSecret ? "" : ", not '\(value)'" }

    public static func < (lhs: Setting, rhs: Setting) -> Bool { lhs.name < rhs.name }
}

/// A setting that is missing or malformed: start-up stops with one line naming it.
public struct ConfigurationError: Error, CustomStringConvertible, Sendable {
    public let setting: String
    public let problem: String
    public init(_ setting: String, _ problem: String) {
        self.setting = setting
        self.problem = problem
    }
    public var description: String { "configuration: \(setting) \(problem)" }
}

/// The settings a process was started with (Cloud Run's environment), read by declaration.
public struct Environment: Sendable {
    public let values: [String: String]

    public init(_ values: [String: String]) { self.values = values }

    /// The value as set, or the default; nil when unset (or empty) with no default.
    /// - Throws: for a value outside the setting's choices.
    public func text(_ setting: Setting) throws -> String? {
        guard let value = values[setting.name], !value.isEmpty else { return setting.defaultValue }
        if case .text(let choices) = setting.kind, !choices.isEmpty, !choices.contains(value) {
            throw ConfigurationError(setting.name, "must be one of \(choices.joined(separator: ", "))\(setting.quoting(value))")
        }
        return value
    }

    /// The value of a setting start-up cannot do without.
    public func required(_ setting: Setting) throws -> String {
        guard let value = try text(setting) else { throw ConfigurationError(setting.name, "is not set") }
        return value
    }

    /// A whole number within the setting's range; unset, its default, else `fallback` (a
    /// default that depends on the function, such as its deadline).
    /// - Throws: for a malformed value, or when unset with neither.
    public func integer(_ setting: Setting, default fallback: Int? = nil) throws -> Int {
        guard let value = try optionalInteger(setting) ?? fallback else { throw ConfigurationError(setting.name, "is not set") }
        return value
    }

    /// A whole number within the setting's range, or nil when unset without a default.
    public func optionalInteger(_ setting: Setting) throws -> Int? {
        guard case .integer(let range) = setting.kind else { preconditionFailure("\(setting.name) is not a number") }
        guard let text = values[setting.name].flatMap({ $0.isEmpty ? nil : $0 }) ?? setting.defaultValue else { return nil }
        guard let parsed = Int(text), range.contains(parsed) else {
            throw ConfigurationError(
                setting.name, "must be a whole number from \(range.lowerBound) to \(range.upperBound)\(setting.quoting(text))")
        }
        return parsed
    }

    /// The items of a comma-separated setting (the default's when unset).
    public func list(_ setting: Setting) -> [String] {
        let text = values[setting.name].flatMap { $0.isEmpty ? nil : $0 } ?? setting.defaultValue ?? ""
        return text.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
    }

    /// Whether the setting has a value (a default does not count).
    public func isSet(_ setting: Setting) -> Bool { !(values[setting.name] ?? "").isEmpty }
}
