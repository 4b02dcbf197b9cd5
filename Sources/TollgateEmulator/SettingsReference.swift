import Foundation
import TollgateDrivers
import TollgateModel
import TollgateRuntime

/// `docs/settings.md`: every environment variable Tollgate reads, rendered by `tollgate
/// deploy render` from the declarations that start-up parses (``Setting``), so the page
/// cannot disagree with the code.
public enum SettingsReference {
    public static let path = "docs/settings.md"

    public static func text(_ declarations: [FunctionDeclaration]) -> String {
        var readers: [Setting: [String]] = [:]
        for declaration in declarations {
            for setting in declaration.reads { readers[setting, default: []].append(declaration.name) }
        }
        let shared = Set(RuntimeConfiguration.Settings.all + Ports.Settings.all)
        let functions = readers.keys.filter { !shared.contains($0) }.sorted()
        var lines = [
            "# Settings",
            "",
            "<!-- Rendered by `tollgate deploy render` from the settings the code declares; never edited. -->",
            "",
            "Every environment variable a function or the `tollgate` command reads. Cloud Run sets",
            "the platform's own; `deploy/terraform` sets the rest from its variables, and secrets",
            "come from Secret Manager (or as `sm://` references read at start-up, see",
            "[google-cloud.md](google-cloud.md)). The local cloud supplies every required one with",
            "a local stand-in. A missing or malformed value stops start-up with one line naming it",
            "(exit 78).",
            "",
            "## Every function",
            "",
        ]
        lines += table(RuntimeConfiguration.Settings.all, readers: nil)
        lines += ["", "## Ports", "", "Where each port's driver points; see [google-cloud.md](google-cloud.md).", ""]
        lines += table(Ports.Settings.all, readers: nil)
        lines += ["", "## By function", ""]
        lines += table(functions, readers: readers)
        lines += ["", "## The `tollgate` command", ""]
        lines += table([LocalEnvironment.serveURLSetting], readers: nil)
        return lines.joined(separator: "\n") + "\n"
    }

    static func table(_ settings: [Setting], readers: [Setting: [String]]?) -> [String] {
        var rows =
            readers == nil
            ? ["| variable | what it is | unset |", "|---|---|---|"]
            : [
                "| variable | read by | what it is | unset |", "|---|---|---|---|",
            ]
        for setting in settings {
            var what = setting.summary
            switch setting.kind {
            case .integer(let range): what += "; a whole number from \(range.lowerBound) to \(range.upperBound)"
            case .text(let choices) where !choices.isEmpty: what += "; one of " + choices.map { "`\($0)`" }.joined(separator: ", ")
            case .list, .text: break
            }
            if setting.isSecret { what += " (a secret)" }
            let unset = setting.defaultValue.map { "`\($0)`" } ?? setting.whenUnset ?? ""
            let cells =
                ["`\(setting.name)`"] + (readers.map { [($0[setting] ?? []).sorted().joined(separator: ", ")] } ?? []) + [what, unset]
            rows.append("| " + cells.map { $0.replacingOccurrences(of: "|", with: "\\|") }.joined(separator: " | ") + " |")
        }
        return rows
    }
}
