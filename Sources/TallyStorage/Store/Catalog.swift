/// A catalog category; apps in a category with `isAI` are "AI apps".
public struct CategoryInfo: Sendable, Hashable {
    public var id: UUID128
    public var name: String
    public var isAI: Bool
    public init(id: UUID128, name: String, isAI: Bool) {
        self.id = id
        self.name = name
        self.isAI = isAI
    }
}

/// A catalog vendor.
public struct VendorInfo: Sendable, Hashable {
    public var id: UUID128
    public var name: String
    public init(id: UUID128, name: String) {
        self.id = id
        self.name = name
    }
}

/// A catalog application, shared by every client that has an instance of it.
public struct CatalogAppInfo: Sendable, Hashable {
    public var id: UUID128
    public var canonicalName: String
    public var logo: String?
    public var type: String
    /// Index into ``Catalog/categories``, or `nil`.
    public var category: Int32?
    /// Index into ``Catalog/vendors``, or `nil`.
    public var vendor: Int32?
    public init(id: UUID128, canonicalName: String, logo: String?, type: String, category: Int32?, vendor: Int32?) {
        self.id = id
        self.canonicalName = canonicalName
        self.logo = logo
        self.type = type
        self.category = category
        self.vendor = vendor
    }
}

/// The global catalog: categories, vendors and applications, each with a dense index.
public final class Catalog: Sendable {
    public let categories: [CategoryInfo]
    public let vendors: [VendorInfo]
    public let applications: [CatalogAppInfo]
    public let categoryIndex: [UUID128: Int32]
    public let vendorIndex: [UUID128: Int32]
    public let applicationIndex: [UUID128: Int32]

    public init(categories: [CategoryInfo], vendors: [VendorInfo], applications: [CatalogAppInfo]) {
        self.categories = categories
        self.vendors = vendors
        self.applications = applications
        func index<T>(_ a: [T], _ id: (T) -> UUID128) -> [UUID128: Int32] {
            var d = [UUID128: Int32](minimumCapacity: a.count)
            for (i, x) in a.enumerated() { d[id(x)] = Int32(i) }
            return d
        }
        categoryIndex = index(categories) { $0.id }
        vendorIndex = index(vendors) { $0.id }
        applicationIndex = index(applications) { $0.id }
    }
}
