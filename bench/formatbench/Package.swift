// swift-tools-version:6.0
import PackageDescription

// Measurements behind the choices in docs/FORMAT.md. Kept apart from the main package so that
// building and testing slicesync never builds it.
let package = Package(
    name: "formatbench",
    dependencies: [.package(name: "slicesync", path: "../..")],
    targets: [
        .executableTarget(
            name: "formatbench",
            dependencies: [.product(name: "SliceSync", package: "slicesync")],
            swiftSettings: [.unsafeFlags(["-Ounchecked"])]
        ),
    ],
    swiftLanguageModes: [.v6]
)
