import Foundation
import Testing
import TollgateTestSupport

/// Every link from one page of the documentation to a file of the repository leads to a
/// file that exists: pages move and get renamed, and a reader following a dead link is lost.
@Suite struct DocumentationLinkTests {
    @Test(arguments: DocumentationSnippet.files)
    func everyRelativeLink_leadsToAFileThatExists(file: String) throws {
        var text = try String(contentsOf: packageRoot.appendingPathComponent(file), encoding: .utf8)
        // Code blocks hold examples, not links.
        text = text.replacing(/```[\s\S]*?```/, with: "")
        let directory = (file as NSString).deletingLastPathComponent
        for match in text.matches(of: /\]\(([^)\s]+)\)/) {
            let target = String(match.1)
            if target.hasPrefix("#") || target.firstMatch(of: /^[a-z]+:/) != nil { continue }
            let path = String(target.split(separator: "#", maxSplits: 1).first ?? "")
            let resolved = packageRoot.appendingPathComponent(directory).appendingPathComponent(path).standardizedFileURL.path
            #expect(FileManager.default.fileExists(atPath: resolved), "\(file) links to \(target), which does not exist")
        }
    }
}
