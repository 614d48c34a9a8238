//! The kind node image for each Kubernetes minor, pinned by digest.
//!
//! ## Overview
//!
//! kind runs each node as a container of a `kindest/node` image; the image *is* the Kubernetes
//! version. The table below is, per minor, the default node image of the newest kind release
//! whose default was that minor, as listed in `shared/k8s/README.md` ("kind default node image":
//! the `Image` constant in kubernetes-sigs/kind `pkg/apis/config/defaults/image.go` at each
//! release tag). kind's configuration guide asks for the `@sha256:` digest; every entry has one.
//!
//! Left out:
//! - releases before v0.8.0: their images were made for kind configs older than
//!   `kind.x-k8s.io/v1alpha4`, the only config version Tessera writes;
//! - minors no kind release defaulted to (1.22, 1.28): no image of them is known here;
//! - `main`'s unreleased v1.37.0-rc.1.
//!
//! A version outside the table is refused at validation (the catalog has only these minors),
//! with the nearest choices.

/// One pinned node image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NodeImage {
    /// `major.minor`.
    pub minor: &'static str,
    /// `kindest/node:vX.Y.Z@sha256:…`.
    pub image: &'static str,
    /// The kind release whose default it is.
    pub kind_release: &'static str,
}

/// Oldest first.
pub const NODE_IMAGES: &[NodeImage] = &[
    NodeImage {
        minor: "1.18",
        image: "kindest/node:v1.18.2@sha256:7b27a6d0f2517ff88ba444025beae41491b016bc6af573ba467b70c5e8e0d85f",
        kind_release: "v0.8.1",
    },
    NodeImage {
        minor: "1.19",
        image: "kindest/node:v1.19.1@sha256:98cf5288864662e37115e362b23e4369c8c4a408f99cbc06e58ac30ddc721600",
        kind_release: "v0.9.0",
    },
    NodeImage {
        minor: "1.20",
        image: "kindest/node:v1.20.2@sha256:8f7ea6e7642c0da54f04a7ee10431549c0257315b3a634f6ef2fecaaedb19bab",
        kind_release: "v0.10.0",
    },
    NodeImage {
        minor: "1.21",
        image: "kindest/node:v1.21.1@sha256:69860bda5563ac81e3c0057d654b5253219618a22ec3a346306239bba8cfa1a6",
        kind_release: "v0.11.1",
    },
    NodeImage {
        minor: "1.23",
        image: "kindest/node:v1.23.4@sha256:0e34f0d0fd448aa2f2819cfd74e99fe5793a6e4938b328f657c8e3f81ee0dfb9",
        kind_release: "v0.12.0",
    },
    NodeImage {
        minor: "1.24",
        image: "kindest/node:v1.24.0@sha256:0866296e693efe1fed79d5e6c7af8df71fc73ae45e3679af05342239cdc5bc8e",
        kind_release: "v0.14.0",
    },
    NodeImage {
        minor: "1.25",
        image: "kindest/node:v1.25.3@sha256:f52781bc0d7a19fb6c405c2af83abfeb311f130707a0e219175677e366cc45d1",
        kind_release: "v0.17.0",
    },
    NodeImage {
        minor: "1.26",
        image: "kindest/node:v1.26.3@sha256:61b92f38dff6ccc29969e7aa154d34e38b89443af1a2c14e6cfbd2df6419c66f",
        kind_release: "v0.18.0",
    },
    NodeImage {
        minor: "1.27",
        image: "kindest/node:v1.27.3@sha256:3966ac761ae0136263ffdb6cfd4db23ef8a83cba8a463690e98317add2c9ba72",
        kind_release: "v0.20.0",
    },
    NodeImage {
        minor: "1.29",
        image: "kindest/node:v1.29.2@sha256:51a1434a5397193442f0be2a297b488b6c919ce8a3931be0ce822606ea5ca245",
        kind_release: "v0.22.0",
    },
    NodeImage {
        minor: "1.30",
        image: "kindest/node:v1.30.0@sha256:047357ac0cfea04663786a612ba1eaba9702bef25227a794b52890dd8bcd692e",
        kind_release: "v0.23.0",
    },
    NodeImage {
        minor: "1.31",
        image: "kindest/node:v1.31.2@sha256:18fbefc20a7113353c7b75b5c869d7145a6abd6269154825872dc59c1329912e",
        kind_release: "v0.25.0",
    },
    NodeImage {
        minor: "1.32",
        image: "kindest/node:v1.32.2@sha256:f226345927d7e348497136874b6d207e0b32cc52154ad8323129352923a3142f",
        kind_release: "v0.27.0",
    },
    NodeImage {
        minor: "1.33",
        image: "kindest/node:v1.33.1@sha256:050072256b9a903bd914c0b2866828150cb229cea0efe5892e2b644d5dd3b34f",
        kind_release: "v0.29.0",
    },
    NodeImage {
        minor: "1.34",
        image: "kindest/node:v1.34.0@sha256:7416a61b42b1662ca6ca89f02028ac133a309a2a30ba309614e8ec94d976dc5a",
        kind_release: "v0.30.0",
    },
    NodeImage {
        minor: "1.35",
        image: "kindest/node:v1.35.0@sha256:452d707d4862f52530247495d180205e029056831160e22870e37e3f6c1ac31f",
        kind_release: "v0.31.0",
    },
    NodeImage {
        minor: "1.36",
        image: "kindest/node:v1.36.1@sha256:3489c7674813ba5d8b1a9977baea8a6e553784dab7b84759d1014dbd78f7ebd5",
        kind_release: "v0.32.0",
    },
];

/// The `major.minor` of a version (`1.31` of `1.31.4`).
pub fn minor_of(version: &str) -> String {
    version.split('.').take(2).collect::<Vec<_>>().join(".")
}

/// The pinned image for a Kubernetes version, by its minor.
pub fn for_version(version: &str) -> Option<&'static NodeImage> {
    let minor = minor_of(version);
    NODE_IMAGES.iter().find(|i| i.minor == minor)
}

/// The minors with a pinned image, oldest first.
pub fn versions() -> Vec<String> {
    NODE_IMAGES.iter().map(|i| i.minor.to_string()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_image_is_kindest_node_of_its_minor_pinned_by_a_sha256_digest() {
        for i in NODE_IMAGES {
            let (tag, digest) = i.image.split_once("@sha256:").unwrap_or_else(|| panic!("{} has no digest", i.image));
            assert_eq!(digest.len(), 64, "{}", i.image);
            assert!(digest.chars().all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()), "{}", i.image);
            let version =
                tag.strip_prefix("kindest/node:v").unwrap_or_else(|| panic!("{} is not kindest/node", i.image));
            assert_eq!(minor_of(version), i.minor, "{}", i.image);
        }
    }

    #[test]
    fn minors_are_unique_and_oldest_first() {
        let parse = |m: &str| m.split_once('.').map(|(a, b)| (a.parse::<u32>().unwrap(), b.parse::<u32>().unwrap()));
        let minors: Vec<_> = NODE_IMAGES.iter().map(|i| parse(i.minor)).collect();
        assert!(minors.windows(2).all(|w| w[0] < w[1]), "{minors:?}");
    }

    #[test]
    fn a_version_finds_the_image_of_its_minor_and_an_unknown_one_none() {
        assert_eq!(for_version("1.35").map(|i| i.kind_release), Some("v0.31.0"));
        assert_eq!(for_version("1.36.0").map(|i| i.kind_release), Some("v0.32.0"));
        assert!(for_version("1.28").is_none());
        assert!(for_version("1.37").is_none());
        assert_eq!(versions().first().map(String::as_str), Some("1.18"));
        assert_eq!(versions().last().map(String::as_str), Some("1.36"));
    }
}
