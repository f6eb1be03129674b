// swift-tools-version:6.0
import PackageDescription

// Release programs start lighter (`slicesync --help`: 18.6 → 13.7 MiB; a 110 MB update's peak
// 39 → 34 MiB before other changes): lld's packed relative relocations, a table ld.so reads at
// start-up of 60 KB instead of 2 MB, and no dynamic export of every symbol, whose 1.5 MB of tables
// ld.so searched for each lookup. The Makefile, the demo and the benchmarks also pass
// `--static-swift-stdlib`, so that no shared library of the Swift runtime is relocated at start-up
// (and the programs run where Swift is not installed). Debug builds, which the tests link the
// programs' modules into, keep the defaults.
let programLinking: [LinkerSetting] = [
    .unsafeFlags(["-use-ld=lld", "-Xlinker", "-z", "-Xlinker", "pack-relative-relocs",
                  "-Xlinker", "--no-export-dynamic"], .when(platforms: [.linux], configuration: .release)),
]

let package = Package(
    name: "slicesync",
    platforms: [.macOS(.v13)],
    products: [
        .executable(name: "shash", targets: ["shash"]),
        .executable(name: "slicesync", targets: ["slicesync"]),
        .executable(name: "syncserver", targets: ["syncserver"]),
        .library(name: "SliceSync", targets: ["SliceSync"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.6.0"),
        .package(url: "https://github.com/swift-server/async-http-client", from: "1.20.0"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.60.0"),
        .package(url: "https://github.com/apple/swift-nio-ssl", from: "2.25.0"),
        .package(url: "https://github.com/apple/swift-nio-http2", from: "1.30.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.5.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.6.0"),
        .package(url: "https://github.com/apple/swift-crypto", "3.0.0"..<"5.0.0"),
    ],
    targets: [
        .systemLibrary(
            name: "CCrypto",
            pkgConfig: "libcrypto",
            providers: [.apt(["libssl-dev"])]
        ),
        .systemLibrary(
            name: "CZlib",
            pkgConfig: "zlib",
            providers: [.apt(["zlib1g-dev"])]
        ),
        .target(name: "CSliceSyncSystem"),
        // Vector kernels (MD4 of many blocks side by side, the rolling hash in 32 lanes), chosen at run time.
        .target(name: "CSliceSyncKernels"),
        // AWS Signature Version 4, credentials and S3 addressing: small, pure, tested on its own.
        .target(
            name: "AWSSigning",
            dependencies: [.product(name: "Crypto", package: "swift-crypto")]
        ),
        .target(
            name: "SliceSync",
            dependencies: [
                "CCrypto",
                "CZlib",
                "CSliceSyncSystem",
                "CSliceSyncKernels",
                "AWSSigning",
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .target(
            name: "SliceSyncHTTP",
            dependencies: [
                "SliceSync",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .target(
            name: "SliceSyncServer",
            dependencies: [
                "SliceSync",
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOHTTP2", package: "swift-nio-http2"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOTLS", package: "swift-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .target(
            name: "CLISupport",
            dependencies: [
                "SliceSync",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .executableTarget(
            name: "shash",
            dependencies: [
                "SliceSync",
                "CLISupport",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ],
            linkerSettings: programLinking
        ),
        .executableTarget(
            name: "slicesync",
            dependencies: [
                "SliceSync",
                "AWSSigning",
                "SliceSyncHTTP",
                "CLISupport",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            linkerSettings: programLinking
        ),
        .executableTarget(
            name: "syncserver",
            dependencies: [
                "SliceSync",
                "SliceSyncServer",
                "CLISupport",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            linkerSettings: programLinking
        ),
        .testTarget(
            name: "SliceSyncTests",
            dependencies: ["SliceSync", "TestSupport"]
        ),
        .target(name: "TestSupport", path: "Tests/TestSupport"),
        .testTarget(
            name: "AWSSigningTests",
            dependencies: ["AWSSigning", "TestSupport"]
        ),
        .testTarget(
            name: "SliceSyncServerTests",
            dependencies: [
                "SliceSync",
                "TestSupport",
                "SliceSyncServer",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
            ]
        ),
        .testTarget(
            name: "EndToEndTests",
            dependencies: ["SliceSync", "TestSupport", "shash", "slicesync", "syncserver"],
            exclude: ["Servers"]
        ),
    ],
    swiftLanguageModes: [.v6]
)
